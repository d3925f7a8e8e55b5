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
