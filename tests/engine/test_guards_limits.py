"""Limits a typo cannot blow past: `index --workers` is capped like `run`'s, `--bootstrap` has a maximum,
and a huge image given to `predict` is one line honouring CLIPBENCH_MAX_IMAGE_PIXELS."""

from __future__ import annotations

import pytest
from _guards_fixtures import one_line_exit_2
from PIL import Image

import clipbench.engine.search as search_module
from clipbench.cli import main
from clipbench.foundations.workers import max_workers


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


def png_header_only(path, width: int, height: int) -> None:
    """A PNG that declares width x height (PIL checks its pixel limit on the header) with no pixel data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b""))


def test_predict_on_a_huge_image_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after the test
    monkeypatch.delenv("CLIPBENCH_MAX_IMAGE_PIXELS", raising=False)
    huge = tmp_path / "huge.png"
    png_header_only(huge, 14000, 14000)
    err = one_line_exit_2(capsys, ["predict", huge, "--labels", "a cat,a dog"])
    assert "huge.png is too large: 196,000,000 pixels" in err and "CLIPBENCH_MAX_IMAGE_PIXELS" in err


def test_predict_honours_clipbench_max_image_pixels(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    image = tmp_path / "photo.png"
    Image.new("RGB", (100, 100), (200, 30, 30)).save(image)
    monkeypatch.setenv("CLIPBENCH_MAX_IMAGE_PIXELS", "1000")
    err = one_line_exit_2(capsys, ["predict", image, "--labels", "a cat,a dog"])
    assert "10,000 pixels" in err and "of 2,000 pixels" in err
    monkeypatch.setenv("CLIPBENCH_MAX_IMAGE_PIXELS", "none")
    assert main(["predict", str(image), "--labels", "a cat,a dog"]) == 0
    assert "a cat:" in capsys.readouterr().out
