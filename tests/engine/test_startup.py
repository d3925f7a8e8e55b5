"""`clipbench --help`, `list` and `compare` start without importing torch or torchvision."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _cli_probe import ROOT, loaded_after, source_env

BASELINE = ROOT / "results" / "baseline.csv"


@pytest.mark.subprocess
@pytest.mark.parametrize("argv", [
    ("--help",),
    ("list", "suites"),
    ("list", "tasks"),
    ("list", "models"),
    ("list", "datasets"),
    ("compare", str(BASELINE.parent / "baseline"), "--baseline", str(BASELINE.parent / "baseline")),
    ("compare", str(BASELINE), "--baseline", str(BASELINE)),
    ("train-tiny", "--help"),
    ("run", "--help"),
], ids=lambda a: " ".join(a[:2]).replace(str(BASELINE), "baseline.csv"))
def test_light_commands_import_no_torch(argv):
    result = loaded_after(*argv)
    assert result["code"] == 0, result
    assert result["heavy"] == [], f"clipbench {' '.join(argv)} imported {result['heavy']}"


@pytest.mark.subprocess
def test_train_tiny_help_shows_the_settings_defaults():
    from clipbench.training.settings import RECIPES, TrainSettings

    proc = subprocess.run([sys.executable, "-m", "clipbench.cli", "train-tiny", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT,
                          env=source_env())
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert f"(default {TrainSettings().seed})" in text
    assert ", ".join(f"{d} {s.epochs}" for d, s in RECIPES.items()) in text  # each recipe's epochs


def test_api_reexports_resolve_lazily():
    from clipbench import api
    from clipbench.engine import runner

    assert api.limit_split is runner.limit_split and api.RunOptions is runner.RunOptions
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018


@pytest.mark.subprocess
def test_runs_import_neither_torchvision_nor_dynamo_nor_sklearn(tmp_path):
    """torchvision (1.5-2.5 s of imports, most of it torch._dynamo via torchvision.ops): CLIP's preprocessing
    is PIL and numpy, so a run that reads images does not import it. Nor does it import torch._dynamo (the
    meta-device model build skips random initialisers) or scikit-learn (digits is read from its CSV file,
    and the probe is torch's). A rerun from the cache runs a subset of this code; ``test_warm_start`` checks
    that a zero-shot one imports no torch at all."""
    argv = ("run", "--suite", "smoke", "--no-progress", "--results-dir", str(tmp_path / "r"),
            "--cache-dir", str(tmp_path / "c"))
    first = loaded_after(*argv)
    assert first["code"] == 0 and first["heavy"] == ["torch"] and first["others"] == []  # reads the images
