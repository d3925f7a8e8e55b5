"""Running a benchmarks/ script as a user would (a subprocess), for the --quick smoke tests."""

from __future__ import annotations

import json
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
