"""``--prompts [DATASET=]FILE``: a user's classnames/templates file for a packaged dataset of the run (a flag, a suite
key and a ``clipbench.run`` argument); its records say so and are their own variant, its texts their own cache
entries; a wrong file or a file for no dataset is one line, exit 2, before any model loads."""

from __future__ import annotations

import hashlib
import json

import pytest

from clipbench import api
from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.engine.runner import resolve_options
from clipbench.features.text_classifier import prompt_hash
from clipbench.features.text_store import texts_hash
from clipbench.results.records import record_variant
from clipbench.suites import parse_suite

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _common(tmp_path) -> dict:
    return dict(data_root=tmp_path / "data", cache_dir=tmp_path / "cache", write=False, progress=False, limit=30,
                bootstrap=0, workers=0, threads=1, offline=True, log_samples="never")


def _text_keys(cache) -> set[str]:
    return {json.loads(p.read_text())["split_fingerprint"] for p in (cache / "text").rglob("key.json")}


def test_a_users_file_changes_the_number_and_the_record_says_so(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("classnames: [" + ", ".join(WORDS) + "]\ntemplates: ['a drawing of the digit {c}.', "
                    "'the number {c}']\n", encoding="utf-8")
    common = _common(tmp_path)
    packaged = api.run("clipbench-tiny", None, "digits", tasks="zeroshot", **common)[0]
    before = _text_keys(tmp_path / "cache")
    custom = api.run("clipbench-tiny", None, "digits", tasks="zeroshot", prompts=str(mine), **common)[0]
    ours = get_dataset("digits", prompts=mine)
    # the number moved, and the record names the file by name and SHA-256 of its bytes
    assert custom["metrics"]["top1"] != packaged["metrics"]["top1"]
    assert custom["prompts"] == {"source": "user", "file": "mine.yaml", "sha256": hashlib.sha256(mine.read_bytes())
                                 .hexdigest(), "gives": ["classnames", "templates"], "language": None}
    assert "prompts" not in packaged and custom["prompt_hash"] == prompt_hash(ours.class_prompts())
    # never the packaged prompts' leaderboard row or compare match
    assert record_variant(packaged) == "limit=30"
    assert record_variant(custom) == f"limit=30,prompts={custom['prompts']['sha256'][:12]}"
    # the text cache: the file's texts are an entry of their own, beside the packaged prompts' entry
    flat = [p for prompts in ours.class_prompts() for p in prompts]
    assert _text_keys(tmp_path / "cache") - before == {texts_hash(flat)}
    # the same file through the Python API's adapter (get_dataset(prompts=...)) is the same record
    same = api.run("clipbench-tiny", None, [ours], tasks="zeroshot", **common)[0]
    assert same["metrics"] == custom["metrics"] and same["prompts"] == custom["prompts"]


def test_language_zh_with_a_users_file_uses_the_file(tmp_path):
    zh = tmp_path / "zh.json"
    zh.write_text(json.dumps({"language": "zh", "classnames": [f"数字{i}" for i in range(10)],
                              "templates": ["手写的{c}"]}, ensure_ascii=False), encoding="utf-8")
    record = api.run("clipbench-tiny", None, "digits", tasks="zeroshot", language="zh", prompts=f"digits={zh}",
                     **_common(tmp_path))[0]
    assert record["language"] == "zh" and record["prompts"]["language"] == "zh"
    assert record["prompt_hash"] == prompt_hash([[f"手写的数字{i}"] for i in range(10)])
    assert record_variant(record).endswith(f"lang=zh,prompts={record['prompts']['sha256'][:12]}")


def test_prompts_as_a_suite_key_a_mapping_or_entries():
    suite = parse_suite({"version": 1, "datasets": ["digits", "cifar10"], "tasks": ["zeroshot"],
                         "options": {"prompts": {"cifar10": "c,d=e.yaml"}}}, "s.yaml", "s")
    assert resolve_options(suite, {}, "cpu").prompts == (("cifar10", "c,d=e.yaml"),)
    given = resolve_options(suite, {"prompts": "digits=d.yaml,cifar10=dir/x=y.yaml"}, "cpu").prompts
    assert given == (("digits", "d.yaml"), ("cifar10", "dir/x=y.yaml"))
    assert resolve_options(suite, {"prompts": "some/dir=odd.yaml"}, "cpu").prompts == (("", "some/dir=odd.yaml"),)


@pytest.mark.parametrize(("datasets", "value", "message"), [
    ("digits,cifar10", "{ok}", "the run has 2 datasets (digits, cifar10); name the one the file is for"),
    ("digits", "cifar10={ok}", "cifar10 is not a dataset of this run (digits)"),
    ("digits", "{bad}", "gives 3 classnames but digits has 10 classes"),
    ("digits", "{ok},{bad}", "with several files, name each one's dataset"),
    ("flickr30k", "{ok}", "flickr30k is an image_text dataset: custom classnames and templates apply to"),
])
def test_a_wrong_prompts_value_is_one_line_before_any_model_loads(tmp_path, capsys, monkeypatch, datasets, value,
                                                                   message):
    import clipbench.engine.runner as runner

    monkeypatch.setattr(runner, "model_of", lambda *a, **k: pytest.fail("the model was loaded"))
    (tmp_path / "ok.yaml").write_text("templates: ['{c}']\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("classnames: [a, b, c]\n", encoding="utf-8")
    given = value.format(ok=tmp_path / "ok.yaml", bad=tmp_path / "bad.yaml")
    code = main(["run", "--model", "clipbench-tiny", "--dataset", datasets, "--task", "zeroshot", "--prompts", given,
                 "--offline", "--no-progress", "--data-root", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
                 "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_prompts_yaml_beside_folder_data_stays_the_datasets_own(tmp_path):
    from _datasets_fixtures import class_tree

    from clipbench.engine.prompt_files import prompts_block, prompts_list, with_run_prompts

    class_tree(tmp_path / "photos", {"cat": 1, "dog": 1})
    (tmp_path / "photos" / "prompts.yaml").write_text("templates: ['a photo of a {c}']\n", encoding="utf-8")
    (tmp_path / "mine.yaml").write_text("templates: ['my {c}']\n", encoding="utf-8")
    spec = f"folder:{tmp_path / 'photos'}"
    folder = get_dataset(spec)
    assert folder.templates == ["a photo of a {c}"] and prompts_block(folder) is None  # part of the data: no variant
    ours = with_run_prompts([folder], [spec], prompts_list(f"{spec}={tmp_path / 'mine.yaml'}"))[0]
    assert ours.templates == ["my {c}"] and prompts_block(ours)["file"] == "mine.yaml"


def test_a_file_no_task_reads_or_not_utf8_is_an_error_before_any_model_loads(tmp_path, monkeypatch):
    import clipbench.engine.runner as runner
    from clipbench.foundations.errors import ClipbenchError, DataError

    monkeypatch.setattr(runner, "model_of", lambda *a, **k: pytest.fail("the model was loaded"))
    (tmp_path / "ok.yaml").write_text("templates: ['{c}']\n", encoding="utf-8")
    (tmp_path / "latin1.yaml").write_bytes("templates: ['{c} caf\xe9']\n".encode("latin-1"))
    with pytest.raises(ClipbenchError, match=r"none of this run's tasks on digits \(linear_probe\) encodes class"):
        api.run("clipbench-tiny", None, "digits", tasks="linear_probe", prompts=str(tmp_path / "ok.yaml"),
                **_common(tmp_path))
    with pytest.raises(DataError, match="latin1.yaml is not UTF-8 text"):
        api.run("clipbench-tiny", None, "digits", tasks="zeroshot", prompts=str(tmp_path / "latin1.yaml"),
                **_common(tmp_path))
