"""Suite YAML loading and validation: built-ins parse, every mistake is one clear ClipbenchError."""

from __future__ import annotations

import pytest

from clipbench.foundations.errors import ClipbenchError, UnknownNameError
from clipbench.suites import builtin_suite_names, describe_suites, load_suite

GOOD = """
version: 2
datasets: [fake10]
tasks: [zeroshot]
options: {batch_size: 8, seeds: [0, 1]}
"""


def _write(tmp_path, text, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtin_suites_parse():
    assert {"smoke", "ci", "zeroshot", "linear_probe"} <= set(builtin_suite_names())
    smoke = load_suite("smoke", check_dataset=None)
    assert smoke.models == ("clipbench-tiny",) and smoke.datasets == ("digits",)
    assert smoke.tasks == ("zeroshot", "linear_probe") and smoke.options["offline"] is True
    zs = load_suite("zeroshot", check_dataset=None)
    assert "imagenet1k" in zs.datasets and len(zs.datasets) == 19
    assert {d["name"] for d in describe_suites()} >= {"smoke", "ci"}


def test_user_suite_file(tmp_path):
    seen = []
    suite = load_suite(_write(tmp_path, GOOD), check_dataset=seen.append)
    assert suite.name == "mine" and suite.version == 2 and suite.options == {"batch_size": 8, "seeds": [0, 1]}
    assert seen == ["fake10"]


@pytest.mark.parametrize("text, message", [
    ("version: 1\ndatasets: [a]\ntasks: [zeroshot]\nmodels: x\n", "unknown key 'models'; did you mean model"),
    ("datasets: [a]\ntasks: [zeroshot]\n", "missing required key 'version'"),
    ("version: one\ndatasets: [a]\ntasks: [zeroshot]\n", "'version' must be an integer"),
    ("version: 1\ndatasets: a\ntasks: [zeroshot]\n", "'datasets' must be a non-empty list"),
    ("version: 1\ndatasets: [a]\ntasks: [zeroshoot]\n", "unknown task 'zeroshoot'; did you mean zeroshot"),
    ("version: 1\ndatasets: [a]\ntasks: [zeroshot]\noptions: {batch_size: -1}\n", "'batch_size' must be a positive"),
    ("version: 1\ndatasets: [a]\ntasks: [zeroshot]\noptions: {batchsize: 1}\n", "did you mean batch_size"),
    ("version: 1\ndatasets: [a, a]\ntasks: [zeroshot]\n", "lists a more than once"),
    ("version: 1\ndatasets: [a\n", "malformed YAML"),
    ("- just a list\n", "must be a YAML mapping"),
])
def test_invalid_suites_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(ClipbenchError) as info:
        load_suite(_write(tmp_path, text), check_dataset=None)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(tmp_path / "mine.yaml") in str(info.value)


def test_unknown_dataset_and_suite_names(tmp_path):
    def check(name):
        raise UnknownNameError(f"unknown dataset {name!r}; did you mean cifar10?")

    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar1'; did you mean cifar10"):
        load_suite(_write(tmp_path, GOOD.replace("fake10", "cifar1")), check_dataset=check)
    with pytest.raises(UnknownNameError, match="did you mean smoke"):
        load_suite("smok")
    with pytest.raises(ClipbenchError, match="suite file not found"):
        load_suite(tmp_path / "absent.yaml")
