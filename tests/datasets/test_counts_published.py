"""Published sizes of FER2013 and WinoGAViL are checked before any model loads; a copy of another size (or
FER2013's unlabelled test.csv) is one DataError line. Kinetics-700, UTKFace and Caltech-101 declare none."""

from __future__ import annotations

import pytest

from clipbench.datasets import get_dataset
from clipbench.datasets.counts import check_counts
from clipbench.foundations.errors import DataError
from tests._fake_layouts_classic import write_caltech101
from tests._fake_layouts_groups import write_winogavil


def _one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message and "--allow-count-mismatch" in message
    return message


def test_caltech101_declares_no_count_while_its_published_sizes_disagree(tmp_path):
    """9,146 images on the dataset's page (a 6,086 test split), 6,085 in DataComp's tasklist, 6,084 in TFDS:
    a declared count could refuse a correct copy, so a small copy passes the check."""
    write_caltech101(tmp_path, 1, test_classes=2)
    adapter = get_dataset("caltech101")
    assert adapter.expected_count == 0
    check_counts([adapter], tmp_path)


def test_winogavil_counts_its_items_not_its_images(tmp_path):
    write_winogavil(tmp_path, 2)  # 4 items over 15 candidate images
    adapter = get_dataset("winogavil")
    assert adapter.load_split("test", tmp_path).n_items == 4
    with pytest.raises(DataError) as info:
        check_counts([adapter], tmp_path)
    assert "winogavil test: 4 items under" in _one_line(info) and "expected 3,563" in str(info.value)


def _fer2013_csv(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = " ".join(["7"] * 48 * 48)
    path.write_text("emotion,pixels,Usage\n" + "".join(f"{e},{pixels},{u}\n" for e, u in rows))


def test_fer2013_test_is_both_test_sets_and_needs_labelled_files(tmp_path, monkeypatch):
    import torchvision.datasets.fer2013 as tv_fer

    monkeypatch.setattr(tv_fer, "check_integrity", lambda *a, **k: True)  # the fakes are not the release's bytes
    adapter = get_dataset("fer2013")
    base = tmp_path / "fer2013" / "fer2013"
    _fer2013_csv(base / "fer2013.csv", [(0, "Training"), (3, "PublicTest"), (6, "PrivateTest"), (1, "Training")])
    assert adapter.is_present(tmp_path)
    assert adapter.load_split("test", tmp_path).labels.tolist() == [3, 6]
    with pytest.raises(DataError) as info:
        check_counts([adapter], tmp_path)
    assert "fer2013 test: 2 samples under" in _one_line(info) and "expected 7,178" in str(info.value)
    (base / "fer2013.csv").unlink()
    (base / "test.csv").write_text("pixels\n" + " ".join(["7"] * 48 * 48) + "\n")
    with pytest.raises(DataError, match="test faces have no labels: torchvision read test.csv"):
        adapter.load_split("test", tmp_path)


def test_sets_whose_size_is_not_fixed_declare_none():
    assert get_dataset("kinetics700").expected_count == 0  # clips still on YouTube: every copy differs
    for name in ("utkface", "utkface_race", "utkface_age"):  # DataComp's 23,703 is its own webdataset's filter
        assert get_dataset(name).expected_count == 0
