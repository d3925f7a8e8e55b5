"""A ``classnames.txt`` or ``prompts.yaml`` beside a ``folder:`` set names its classes by folder name where it
can: the same names in another order must not be applied by position to the sorted folders (issue 28.1)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from _datasets_fixtures import class_tree

from clipbench.datasets import get_dataset
from clipbench.foundations.errors import ClipbenchError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture
def digit_folders(tmp_path):
    class_tree(tmp_path, {d: 1 for d in DIGITS})
    return tmp_path


def _label_names(adapter) -> dict[str, str]:
    """image's class folder -> the classname its label points at."""
    split = adapter.load_split("test", None)
    return {Path(split.paths[i]).parent.name: adapter.classnames[int(lab)] for i, lab in enumerate(split.labels)}


def test_classnames_file_with_folder_names_in_counting_order_maps_by_name(digit_folders):
    (digit_folders / "classnames.txt").write_text("\n".join(DIGITS) + "\n")
    adapter = get_dataset(f"folder:{digit_folders}")
    assert _label_names(adapter) == {d: d for d in DIGITS}


def test_prompts_yaml_with_folder_names_in_counting_order_maps_by_name(digit_folders):
    (digit_folders / "prompts.yaml").write_text(yaml.safe_dump(
        {"classnames": DIGITS, "templates": ["a photo of the number {c}."]}))
    adapter = get_dataset(f"folder:{digit_folders}")
    assert _label_names(adapter) == {d: d for d in DIGITS}
    assert adapter.templates == ["a photo of the number {c}."]


def test_prompts_yaml_synonyms_follow_their_class(tmp_path):
    class_tree(tmp_path, {"cat": 1, "dog": 1})
    (tmp_path / "prompts.yaml").write_text(yaml.safe_dump(
        {"classnames": [["dog", "puppy"], "cat"], "templates": ["a {c}."]}))
    adapter = get_dataset(f"folder:{tmp_path}")
    assert adapter.classnames == ["cat", "dog"]
    assert adapter.per_class_prompts == {"cat": ["a cat."], "dog": ["a dog.", "a puppy."]}


def test_names_of_another_set_are_an_error_showing_both_lists(digit_folders):
    (digit_folders / "classnames.txt").write_text("\n".join(["zero", "one", "two", "three", "four", "five",
                                                             "six", "seven", "nine", "ten"]) + "\n")
    with pytest.raises(ClipbenchError) as err:
        get_dataset(f"folder:{digit_folders}")
    message = str(err.value)
    assert "\n" not in message and "ten" in message and "eight" in message


def test_display_names_in_sorted_order_stay_positional_and_are_logged(tmp_path, caplog):
    class_tree(tmp_path, {"golden_retriever": 1, "tabby": 1})
    (tmp_path / "classnames.txt").write_text("golden retriever\ntabby cat\n")
    with caplog.at_level(logging.INFO, logger="clipbench"):
        adapter = get_dataset(f"folder:{tmp_path}")
    assert adapter.classnames == ["golden retriever", "tabby cat"]
    assert any("tabby -> tabby cat" in r.getMessage() for r in caplog.records)


def test_a_match_at_another_position_is_an_error(tmp_path):
    class_tree(tmp_path, {"cat": 1, "dog": 1})
    (tmp_path / "classnames.txt").write_text("dog\nkitten\n")  # "dog" would name cat/ by position
    with pytest.raises(ClipbenchError, match=r"dog, kitten.*cat, dog"):
        get_dataset(f"folder:{tmp_path}")


def test_csv_prompts_yaml_keys_its_labels_by_name(tmp_path):
    class_tree(tmp_path, {"cat": 1, "dog": 1})
    (tmp_path / "data.csv").write_text("image,label\ncat/img_000.png,cat\ndog/img_000.png,dog\n")
    (tmp_path / "prompts.yaml").write_text(yaml.safe_dump({"classnames": ["dog", "cat"]}))
    adapter = get_dataset(f"csv:{tmp_path / 'data.csv'}")
    split = adapter.load_split("test", None)
    np.testing.assert_array_equal([adapter.classnames[int(i)] for i in split.labels], ["cat", "dog"])
