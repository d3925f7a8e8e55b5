"""The bundled clipbench-shapes checkpoint: registered with its SHA-256, and retraining reproduces it byte for byte."""

from __future__ import annotations

import time

import pytest

from clipbench.foundations.fileio import sha256_file
from clipbench.models.checkpoints import PACKAGED_CHECKPOINTS
from clipbench.training.tiny import recipe, train_tiny


def _info():
    return next(c for c in PACKAGED_CHECKPOINTS if c.name == "clipbench-shapes")


def test_shipped_file_matches_its_registered_sha256_and_size_limit():
    info = _info()
    path = info.package_path()
    assert path.stat().st_size < 10_000_000
    assert sha256_file(path) == info.sha256


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_checkpoint(tmp_path):
    """The documented `clipbench train-tiny --dataset shapes` recipe (256 steps, ~35 s of CPU) gives the same bytes."""
    start = time.process_time()
    result, sha = train_tiny(tmp_path / "shapes.pt", data_root=tmp_path / "data", progress=False, dataset="shapes")
    cpu = time.process_time() - start
    assert result.steps == 256 and result.settings == recipe("shapes")
    assert result.epoch_losses[-1] < result.epoch_losses[0] - 1.5
    assert sha == _info().sha256, f"retrained SHA-256 {sha} after {cpu:.0f} s CPU differs from the shipped file"


def test_cli_train_tiny_dataset_shapes(tmp_path, monkeypatch, capsys):
    from clipbench.cli import main
    from clipbench.models.loading import load_model

    monkeypatch.chdir(tmp_path)
    assert main(["train-tiny", "--dataset", "shapes", "--steps", "2", "--data-root", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "wrote clipbench-shapes.pt" in out and "after 2 steps" in out
    model = load_model(str(tmp_path / "clipbench-shapes.pt"))
    assert model.encode_text(model.tokenize(["a small red circle above a large blue square"])).shape == (1, 64)
    with pytest.raises(SystemExit):  # argparse rejects an unknown training dataset
        main(["train-tiny", "--dataset", "cifar10"])
    assert "invalid choice: 'cifar10'" in capsys.readouterr().err
