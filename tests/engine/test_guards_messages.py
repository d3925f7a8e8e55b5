"""Wrong messages, fixed: a missing query image is said to be missing (not corrupt), and a --cache-dir
that is a file is one line before any model loads (not a lock path inside it afterwards)."""

from __future__ import annotations

import pytest
from _guards_fixtures import one_line_exit_2
from PIL import Image

import clipbench.models
from clipbench.cli import main


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        Image.new("RGB", (32, 32), (60 * i, 20, 90)).save(folder / f"p{i}.png")
    assert main(["index", str(folder), "--model", "clipbench-tiny", "--device", "cpu", "--no-progress"]) == 0
    return folder


def no_model(*args, **kwargs):
    raise AssertionError("a model was loaded")


@pytest.mark.parametrize("flag", [["--image"], []])
def test_missing_query_image_is_said_missing(indexed, capsys, monkeypatch, flag):
    monkeypatch.setattr(clipbench.models, "load_model", no_model)  # and said before any model loads
    err = one_line_exit_2(capsys, ["search", *flag, "missing.jpg", "--index", indexed, "--device", "cpu"])
    assert "query image missing.jpg does not exist" in err and "corrupt" not in err


def test_query_image_that_is_a_folder(indexed, capsys):
    err = one_line_exit_2(capsys, ["search", "--image", indexed, "--index", indexed, "--device", "cpu"])
    assert "is not a file" in err and "corrupt" not in err


@pytest.mark.parametrize("command", [
    ["run", "--model", "clipbench-tiny", "--no-progress", "--device", "cpu"],
    ["predict", "IMAGE", "--labels", "a cat,a dog"],
    ["index", "FOLDER", "--model", "clipbench-tiny", "--no-progress", "--device", "cpu"],
    ["search", "a cat", "--index", "FOLDER", "--device", "cpu"],
])
@pytest.mark.parametrize("under", [False, True])
def test_cache_dir_that_is_a_file_is_one_line_before_any_model(indexed, tmp_path, capsys, monkeypatch, command, under):
    monkeypatch.setattr(clipbench.models, "load_model", no_model)
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file")
    cache = blocker / "cache" if under else blocker
    argv = [str(indexed / "p0.png") if a == "IMAGE" else str(indexed) if a == "FOLDER" else a for a in command]
    err = one_line_exit_2(capsys, [*argv, "--cache-dir", cache, "--results-dir", tmp_path / "r"]
                          if command[0] == "run" else [*argv, "--cache-dir", cache])
    assert f"--cache-dir {cache}: {blocker} is a file, expected a directory" in err and ".lock" not in err


def test_search_format_json_and_the_deprecated_json_alias(indexed, capsys, caplog):
    import json

    base = ["search", "a red square", "--index", str(indexed), "--top", "2", "--device", "cpu"]
    capsys.readouterr()
    assert main([*base, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "text" and [h["rank"] for h in doc["hits"]] == [1, 2]
    with caplog.at_level("WARNING"):
        assert main([*base, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == doc
    assert "--json is deprecated; use --format json" in caplog.text
    assert main([*base, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "rank,path,score,changed,query,kind" and len(lines) == 3
