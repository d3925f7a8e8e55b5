"""Running a benchmarks/ script as a user would (a subprocess), for the --quick smoke tests; argument checks,
which fail before any work, run in this interpreter (a fresh one would only import torch again)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_quick(script: str, out: Path, *extra: str) -> tuple[str, dict]:
    """Run ``benchmarks/<script> --quick --out OUT [extra]``; returns (stdout, the JSON summary)."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", *extra, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, json.loads(out.read_text())


def exit_code_in_process(script: str, *argv: str, monkeypatch) -> int:
    """``benchmarks/<script> argv`` as ``__main__`` in this interpreter; its exit code (stderr goes to capsys).
    sys.path and the benchmark modules it imports are restored afterwards."""
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / script), *argv])
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    try:
        runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    except SystemExit as exc:
        return exc.code
    finally:
        for name in set(sys.modules) - before:
            if str(getattr(sys.modules[name], "__file__", "")).startswith(str(BENCHMARKS)):
                del sys.modules[name]
    return 0
