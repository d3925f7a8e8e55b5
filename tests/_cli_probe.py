"""Run one `clipbench` command in a fresh interpreter and report what it imported (start-up tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys
from clipbench import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "torchvision") if m in sys.modules),
                  "others": sorted(m for m in ("torch._dynamo", "sklearn") if m in sys.modules),
                  "pandas": "pandas" in sys.modules}), file=sys.stderr)
"""


def source_env() -> dict:
    """The environment with this source tree first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def loaded_after(*argv: str, timeout: float = 120) -> dict:
    """``{"code", "heavy": torch/torchvision, "others": torch._dynamo/sklearn, "pandas"}`` after ``clipbench argv``."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=timeout,
                          env=source_env(), cwd=ROOT)
    return json.loads(proc.stderr.strip().splitlines()[-1])
