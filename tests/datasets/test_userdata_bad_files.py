"""Bad entries in the user's files stop with one line naming them (issue 28.2, 28.11, 28.12)."""

from __future__ import annotations

import os

import pytest
from _datasets_fixtures import class_tree

from clipbench.datasets import get_dataset
from clipbench.foundations.errors import DataError


def test_broken_symlink_in_a_class_folder_is_an_error_naming_it(tmp_path):
    class_tree(tmp_path / "data", {"cat": 2, "dog": 2})
    os.symlink(tmp_path / "gone.png", tmp_path / "data" / "dog" / "lost.png")
    adapter = get_dataset(f"folder:{tmp_path / 'data'}")
    with pytest.raises(DataError, match=r"broken symlink .*dog/lost\.png") as err:
        adapter.load_split("test", None)
    assert "\n" not in str(err.value)


def _one_image(tmp_path):
    return class_tree(tmp_path, {"imgs": 2})["imgs"]


def test_pairs_csv_with_a_byte_order_mark_reads_like_csv(tmp_path):
    images = _one_image(tmp_path)
    rows = "".join(f"imgs/{p.name},a photo {i}\r\n" for i, p in enumerate(images))
    (tmp_path / "excel.csv").write_text("image,caption\r\n" + rows, encoding="utf-8-sig")
    split = get_dataset(f"pairs:{tmp_path / 'excel.csv'}").load_split("test", None)
    assert len(split) == 2


def test_pairs_semicolon_csv_names_the_delimiter(tmp_path):
    _one_image(tmp_path)
    (tmp_path / "semi.csv").write_text("image;caption\nimgs/img_000.png;a photo\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"semicolon-delimited.*save it with commas"):
        get_dataset(f"pairs:{tmp_path / 'semi.csv'}")


def test_pairs_tsv_saved_with_commas_names_the_delimiter(tmp_path):
    _one_image(tmp_path)
    (tmp_path / "commas.tsv").write_text("image,caption\nimgs/img_000.png,a photo\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"comma-delimited.*tab-separated \.tsv files"):
        get_dataset(f"pairs:{tmp_path / 'commas.tsv'}")


def test_folder_path_cut_at_a_comma_hints_at_the_escape(tmp_path):
    class_tree(tmp_path / "cats,dogs", {"cat": 1, "dog": 1})
    # `--dataset folder:/x/cats,dogs` reaches the adapter as `folder:/x/cats` (lists split on commas)
    with pytest.raises(DataError, match=r"does not exist .*cats,\.\.\. exists.*write a comma in a path as \\,"):
        get_dataset(f"folder:{tmp_path / 'cats'}")
    with pytest.raises(DataError) as err:
        get_dataset(f"folder:{tmp_path / 'birds'}")
    assert "comma" not in str(err.value)
    for prefix, file in (("pairs", "a,b.csv"), ("choices", "a,b.jsonl"), ("captions", "caps,2")):
        (tmp_path / file).write_text("")
        with pytest.raises(DataError, match=r"does not exist .*exists.*write a comma in a path as \\,"):
            get_dataset(f"{prefix}:{tmp_path / file.split(',')[0]}")
