"""Texts that come from elsewhere than the packaged prompt files, through a whole run: a user's prompt file under
``--language`` (its texts win, the records say its language) and Babel-ImageNet's files under the run's data root
(each language scores its own classes)."""

from __future__ import annotations

from _multilingual_fixtures import make_fake_babel_imagenet

from clipbench import api
from clipbench.datasets import get_dataset


def test_a_users_prompt_file_and_babel_imagenet_through_a_run(tmp_path):
    zh_file = tmp_path / "zh.yaml"
    zh_file.write_text("language: zh\nclassnames: [" + ", ".join(f"数{i}" for i in range(10)) + "]\n"
                       "templates: ['{c}的照片']\n", encoding="utf-8")
    make_fake_babel_imagenet(tmp_path / "data")
    common = dict(data_root=tmp_path / "data", cache_dir=tmp_path / "cache", write=False, progress=False,
                  limit=20, bootstrap=0, workers=0, threads=1, offline=True)
    records = api.run("clipbench-tiny", None, [get_dataset("digits", prompts=zh_file), "babel_imagenet"],
                      tasks="zeroshot", language="zh", **common)
    by = {r["dataset"]: r for r in records}
    assert by["digits"]["language"] == by["babel_imagenet"]["language"] == "zh" and len(records) == 2
    # Chinese names ImageNet classes 0, 5, 7 and 9: six images of them in the fake copy (9 has none), read from
    # the run's data root
    assert by["babel_imagenet"]["n_samples"] == 6
