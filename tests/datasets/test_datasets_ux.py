"""Datasets that look wrong (issue 19), through the CLI: each is a one-line error (exit 2) or a log line,
never a silently odd score (split folders taken as classes, one class scoring 100%, phantom classes)."""

from __future__ import annotations

import json
import logging
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from _datasets_fixtures import class_tree, write_image
from _engine_fixtures import write_tiny_clip
from PIL import Image

import clipbench.datasets.images as images
from clipbench.cli import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("ux") / "tiny.pt")


@pytest.fixture(autouse=True)
def _pil_limit(monkeypatch):
    """PIL's limit and the once-per-process flag are globals: each test starts from PIL's default."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    monkeypatch.setattr(images, "_large_image_logged", False)
    monkeypatch.delenv(images.MAX_PIXELS_ENV, raising=False)


def _run(ckpt: Path, tmp_path: Path, dataset: str) -> list[str]:
    return ["run", "--model", str(ckpt), "--suite", "zeroshot", "--dataset", dataset, "--device", "cpu",
            "--no-progress", "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
            "--results-dir", str(tmp_path / "res")]


def _one_line_error(capsys, argv: list[str], *fragments: str) -> str:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("clipbench: error:") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    assert "Traceback" not in err
    return err


def _records(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "res" / "results.jsonl").read_text().splitlines()]


def _png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit black PNG of any size, written without holding its pixels (a few KB on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * ((width + 7) // 8 + 1)  # filter byte + packed bits
    body = zlib.compressobj(9)
    idat = b"".join(body.compress(row) for _ in range(height)) + body.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


# ------------------------------------------------------------------------------------ split folders


def test_split_folders_are_used_as_splits_and_said(ckpt, tmp_path, capsys, caplog):
    class_tree(tmp_path / "ds" / "train", {"cat": 2, "dog": 2}, seed=1)
    class_tree(tmp_path / "ds" / "val", {"cat": 1, "dog": 1}, seed=2)
    class_tree(tmp_path / "ds" / "test", {"cat": 2, "dog": 1}, seed=3)
    caplog.set_level(logging.INFO, logger="clipbench")
    assert main(_run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}")) == 0, capsys.readouterr().err
    (record,) = _records(tmp_path)
    assert record["split"] == "test" and record["n_samples"] == 3
    said = [r.getMessage() for r in caplog.records if "split folders" in r.getMessage()]
    assert said and "train/ (2 class folders) as 'train'" in said[0] and "test/ (2 class folders) as 'test'" in said[0]
    assert "2 classes" in said[0]


def test_split_folders_beside_class_folders_is_an_error(ckpt, tmp_path, capsys):
    class_tree(tmp_path / "ds" / "train", {"cat": 2, "dog": 2})
    class_tree(tmp_path / "ds" / "test", {"cat": 1, "dog": 1})
    class_tree(tmp_path / "ds", {"extra": 2})
    _one_line_error(capsys, _run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}"), "mixed layout",
                    "split folders test/, train/ holding class folders beside other folders extra/")


def test_a_class_called_test_beside_classes_is_an_error(ckpt, tmp_path, capsys):
    class_tree(tmp_path / "ds", {"cat": 2, "dog": 2, "test": 2})  # test/ holds images, not class folders
    _one_line_error(capsys, _run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}"),
                    "folders named like splits (test/) beside other folders cat/, dog/")


def test_split_missing_a_class_is_warned(ckpt, tmp_path, capsys, caplog):
    class_tree(tmp_path / "ds" / "train", {"cat": 2, "dog": 2, "fox": 2})
    class_tree(tmp_path / "ds" / "test", {"cat": 1, "dog": 1})
    assert main(_run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}")) == 0, capsys.readouterr().err
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("split 'test' has no folder for 1 of the 3 classes (fox)" in m for m in warned), warned


# -------------------------------------------------------------------------------------- one class


def test_a_single_class_folder_is_an_error(ckpt, tmp_path, capsys):
    class_tree(tmp_path / "ds", {"cat": 3})
    _one_line_error(capsys, _run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}"), "has 1 class folder (cat)",
                    "at least 2 classes")
    class_tree(tmp_path / "split" / "train", {"cat": 2})
    class_tree(tmp_path / "split" / "test", {"cat": 2})
    _one_line_error(capsys, _run(ckpt, tmp_path, f"folder:{tmp_path / 'split'}"), "has 1 class folder (cat)")


def test_a_single_class_csv_is_an_error(ckpt, tmp_path, capsys):
    files = class_tree(tmp_path / "img", {"cat": 3})["cat"]
    (tmp_path / "named.csv").write_text("path,label\n" + "".join(f"{f},cat\n" for f in files))
    _one_line_error(capsys, _run(ckpt, tmp_path, f"csv:{tmp_path / 'named.csv'}"), "has 1 class (cat)")
    (tmp_path / "numbered.csv").write_text("path,label\n" + "".join(f"{f},0\n" for f in files))
    _one_line_error(capsys, _run(ckpt, tmp_path, f"csv:{tmp_path / 'numbered.csv'}"), "has 1 class (0)")


def test_a_single_class_hf_dataset_is_an_error(ckpt, tmp_path, capsys):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat"])})
    files = [str(write_image(tmp_path / "src" / f"{i}.png", i)) for i in range(3)]
    datasets.Dataset.from_dict({"image": files, "label": [0, 0, 0]}, features=features).save_to_disk(str(tmp_path / "hf"))
    _one_line_error(capsys, _run(ckpt, tmp_path, f"hf:{tmp_path / 'hf'}"), "has 1 class (cat)")


def test_predict_with_one_label_is_an_error(ckpt, tmp_path, capsys):
    image = write_image(tmp_path / "cat.png", 0, size=32)
    _one_line_error(capsys, ["predict", image, "--model", ckpt, "--labels", "cat"],
                    "predict needs at least 2 labels", "got 1 (cat)")


# -------------------------------------------------------------------------------------------- CSVs


def test_integer_labels_with_gaps_warn_with_the_count(ckpt, tmp_path, capsys, caplog):
    files = class_tree(tmp_path / "img", {"a": 2, "b": 2})
    rows = [f"{files['a'][0]},0", f"{files['a'][1]},0", f"{files['b'][0]},7", f"{files['b'][1]},7"]
    (tmp_path / "data.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    assert main(_run(ckpt, tmp_path, f"csv:{tmp_path / 'data.csv'}")) == 0, capsys.readouterr().err
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("integer labels make 8 classes (0..7), 6 of them without rows (1, 2, 3, 4, 5, 6)" in m
               and "classnames.txt" in m for m in warned), warned
    caplog.clear()
    (tmp_path / "classnames.txt").write_text("\n".join(f"class {i}" for i in range(8)) + "\n")
    assert main(_run(ckpt, tmp_path, f"csv:{tmp_path / 'data.csv'}")) == 0  # named classes: said, not warned
    assert not [r for r in caplog.records if "without rows" in r.getMessage()]


def test_one_image_under_two_labels_is_an_error(ckpt, tmp_path, capsys):
    files = class_tree(tmp_path / "img", {"cat": 2, "dog": 2})
    rows = [f"img/cat/{files['cat'][0].name},cat", f"img/dog/{files['dog'][0].name},dog",
            f"./img/cat/{files['cat'][0].name},dog"]
    (tmp_path / "data.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    _one_line_error(capsys, _run(ckpt, tmp_path, f"csv:{tmp_path / 'data.csv'}"),
                    "data.csv line 4:", "is labelled 'dog' but line 2 labels it 'cat'")


def test_excel_utf8_csv_with_a_bom_is_read(ckpt, tmp_path, capsys):
    files = class_tree(tmp_path / "img", {"cat": 2, "dog": 2})
    rows = [f"{p},{name}" for name, paths in files.items() for p in paths]
    (tmp_path / "excel.csv").write_text("path,label\r\n" + "\r\n".join(rows) + "\r\n", encoding="utf-8-sig")
    assert (tmp_path / "excel.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert main(_run(ckpt, tmp_path, f"csv:{tmp_path / 'excel.csv'}")) == 0, capsys.readouterr().err
    assert _records(tmp_path)[0]["n_samples"] == 4


def test_semicolon_csv_suggests_the_delimiter(ckpt, tmp_path, capsys):
    files = class_tree(tmp_path / "img", {"cat": 1, "dog": 1})
    (tmp_path / "semi.csv").write_text(f"path;label\n{files['cat'][0]};cat\n{files['dog'][0]};dog\n")
    _one_line_error(capsys, _run(ckpt, tmp_path, f"csv:{tmp_path / 'semi.csv'}"),
                    "one column 'path;label'", "semicolon-delimited (';')", "save it with commas")


# ------------------------------------------------------------------------------------ folder: paths


def test_folder_pointing_at_a_file_says_so(ckpt, tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("path,label\n")
    _one_line_error(capsys, _run(ckpt, tmp_path, f"folder:{tmp_path / 'labels.csv'}"),
                    "is a file, not a folder", f"use csv:{tmp_path / 'labels.csv'}")


@pytest.mark.parametrize("spec, fragment", [("folder:", "folder: needs a path"), ("csv:", "csv: needs a path"),
                                            ("hf:", "hf: needs a dataset")])
def test_a_spec_without_a_path_says_a_path_is_needed(ckpt, tmp_path, capsys, spec, fragment):
    err = _one_line_error(capsys, _run(ckpt, tmp_path, spec), fragment)
    assert "did you mean" not in err


# --------------------------------------------------------------------------------------- big images


def test_an_image_over_the_bomb_limit_says_what_it_is_and_how_to_allow_it(ckpt, tmp_path, capsys):
    class_tree(tmp_path / "ds", {"cat": 2, "dog": 2})
    big = _png(tmp_path / "ds" / "dog" / "huge.png", 14000, 14000)
    assert big.stat().st_size < 100_000  # refused from its header: no pixels are ever decoded
    _one_line_error(capsys, _run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}"),
                    f"image {big} is too large: 196,000,000 pixels", "decompression-bomb limit of 178,956,970",
                    "CLIPBENCH_MAX_IMAGE_PIXELS=196000000")


def test_large_images_are_one_log_line_and_the_env_var_sets_the_limit(ckpt, tmp_path, capsys, caplog, monkeypatch):
    """PIL's own limits scaled down by CLIPBENCH_MAX_IMAGE_PIXELS, so the images stay tiny: 100 pixels warn
    (PIL's DecompressionBombWarning at 10000x10000 by default), over 200 are refused (14000x14000)."""
    class_tree(tmp_path / "ds", {"cat": 2, "dog": 2})  # 8x8 = 64 pixels
    _png(tmp_path / "ds" / "cat" / "large1.png", 12, 12)  # 144 pixels: over the limit, under twice it
    _png(tmp_path / "ds" / "dog" / "large2.png", 12, 12)
    monkeypatch.setenv("CLIPBENCH_MAX_IMAGE_PIXELS", "100")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(_run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}")) == 0, capsys.readouterr().err
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    said = [r.getMessage() for r in caplog.records if "large image" in r.getMessage()]
    assert len(said) == 1 and "(144 pixels)" in said[0] and "limit of 100 pixels" in said[0], said
    assert "CLIPBENCH_MAX_IMAGE_PIXELS" in said[0]

    _png(tmp_path / "ds" / "dog" / "huge.png", 16, 16)  # 256 pixels: refused
    _one_line_error(capsys, _run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}"), "256 pixels",
                    "limit of 200", "CLIPBENCH_MAX_IMAGE_PIXELS=256")
    monkeypatch.setenv("CLIPBENCH_MAX_IMAGE_PIXELS", "256")  # what the error suggested
    assert main(_run(ckpt, tmp_path, f"folder:{tmp_path / 'ds'}")) == 0, capsys.readouterr().err
    monkeypatch.setenv("CLIPBENCH_MAX_IMAGE_PIXELS", "lots")  # an empty cache, so the images are decoded
    _one_line_error(capsys, _run(ckpt, tmp_path / "fresh", f"folder:{tmp_path / 'ds'}"),
                    "CLIPBENCH_MAX_IMAGE_PIXELS='lots' is not a pixel count")
