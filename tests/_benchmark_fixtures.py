"""Running a benchmarks/ script as a user would (a subprocess), for the --quick smoke tests; argument checks,
which fail before any work, run in this interpreter (a fresh one would only import torch again)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_quick(script: str, out: Path, *extra: str, in_process: bool = False) -> tuple[str, dict]:
    """Run ``benchmarks/<script> --quick --out OUT [extra]``; returns (stdout, the JSON summary).

    ``in_process``: as ``__main__`` in this interpreter (torch is already imported: seconds saved per script),
    for scripts that start no process of their own; sys.path, the benchmark modules and torch's thread count
    are restored afterwards. Scripts that time cold starts or launch ranks run as a subprocess."""
    argv = [str(BENCHMARKS / script), "--quick", *extra, "--out", str(out)]
    if in_process:
        import contextlib
        import io

        import pytest
        import torch

        buffer, threads = io.StringIO(), torch.get_num_threads()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(buffer):
            code = exit_code_in_process(script, *argv[1:], monkeypatch=patch)
        torch.set_num_threads(threads)
        assert code in (0, None), buffer.getvalue()[-2000:]
        return buffer.getvalue(), json.loads(out.read_text())
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300)
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
