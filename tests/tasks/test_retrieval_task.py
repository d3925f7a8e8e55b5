"""The zeroshot_retrieval task end to end: the bundled clipbench-shapes model on the generated shapes set, a
shuffled-caption control, caption prefixes, the cached text features, --limit and the CLI flags."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from clipbench import api
from clipbench.cli import main
from clipbench.datasets import get_dataset
from clipbench.features import text_store
from clipbench.results.records import record_variant


@pytest.fixture(scope="module")
def smoke_record(shapes_data_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("retrieval-smoke")
    (record,) = api.run(suite="smoke-retrieval", data_root=shapes_data_root, cache_dir=base / "cache",
                        results_dir=base / "results", progress=False)
    return record


def test_smoke_retrieval_is_far_above_chance(smoke_record):
    r = smoke_record
    assert r["task"] == "zeroshot_retrieval" and r["model"] == "clipbench-shapes" and r["dataset"] == "shapes"
    assert r["primary_metric"] == "mean_recall" and r["n_samples"] == 300 and r["zeroshot_retrieval"]["n_captions"] == 900
    m, chance = r["metrics"], r["zeroshot_retrieval"]["chance"]
    assert chance["t2i_recall@1"] == pytest.approx(100 / 300) and chance["mean_recall"] < 2
    assert m["mean_recall"] > 20 * chance["mean_recall"]  # ~61 vs 1.8
    for direction in ("i2t", "t2i"):
        assert m[f"{direction}_recall@1"] > 20 * chance[f"{direction}_recall@1"]
        assert m[f"{direction}_recall@1"] <= m[f"{direction}_recall@5"] <= m[f"{direction}_recall@10"]
    assert r["ci95"]["low"] < m["mean_recall"] < r["ci95"]["high"] and r["ci95"]["low"] > 10 * chance["mean_recall"]
    assert set(r["metric_ci95"]) == set(m) and r["zeroshot_retrieval"]["caption_prefix"] == "" and r["zeroshot_retrieval"]["recall_k"] == [1, 5, 10]
    assert r["zeroshot_retrieval"]["tie_rule"].startswith("equal float32 similarities") and record_variant(r) == ""


def test_shuffled_captions_control_falls_to_chance(shapes_data_root, smoke_record, tmp_path):
    """The same images with every image's captions handed to another image: the model's score must collapse."""
    split = get_dataset("shapes").load_split("test", shapes_data_root)
    perm = np.random.default_rng(0).permutation(len(split))
    rows = [{"image": split.paths[i], "captions": split.captions[perm[i]]} for i in range(len(split))]
    pairs = tmp_path / "shuffled.jsonl"
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    (control,) = api.run(suite="smoke-retrieval", datasets=[f"pairs:{pairs}"], data_root=shapes_data_root,
                         cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", progress=False)
    chance = control["zeroshot_retrieval"]["chance"]["mean_recall"]
    assert control["n_samples"] == 300 and control["zeroshot_retrieval"]["n_captions"] == 900
    assert control["metrics"]["mean_recall"] < 3 * chance  # random pairs: near chance
    assert smoke_record["metrics"]["mean_recall"] > 10 * control["metrics"]["mean_recall"]
    assert smoke_record["ci95"]["low"] > control["ci95"]["high"]


def test_caption_prefix_limit_and_text_cache(shapes_data_root, tmp_path, monkeypatch, caplog):
    calls = []
    real = text_store._encode_chunk  # what the store runs for each missing shard of texts

    def counting(model, texts, *args, **kwargs):
        calls.append(len(texts))
        return real(model, texts, *args, **kwargs)

    monkeypatch.setattr(text_store, "_encode_chunk", counting)
    common = dict(suite="smoke-retrieval", data_root=shapes_data_root, cache_dir=tmp_path / "cache",
                  results_dir=tmp_path / "results", progress=False, limit=40, bootstrap=50)
    (plain,) = api.run(**common)
    (prefixed,) = api.run(caption_prefix="a picture of ", **common)
    assert plain["n_samples"] == 40 and plain["zeroshot_retrieval"]["n_captions"] == 120 and calls == [120, 120]
    assert prefixed["zeroshot_retrieval"]["caption_prefix"] == "a picture of " and prefixed["prompt_hash"] != plain["prompt_hash"]
    assert record_variant(prefixed) == "limit=40,prefix='a picture of '" and record_variant(plain) == "limit=40"
    (again,) = api.run(**common)  # the caption features come from the text store now
    assert calls == [120, 120] and again["metrics"] == plain["metrics"]
    shards = list((tmp_path / "cache" / "text" / "texts").glob("*/shards/*.npz"))
    assert len(shards) == 2  # one verified shard per caption set
    for npz in shards:
        npz.write_bytes(npz.read_bytes()[:-7])  # truncate every cached entry
    with caplog.at_level(logging.WARNING):
        (repaired,) = api.run(**common)
    assert calls == [120, 120, 120] and repaired["metrics"] == plain["metrics"]
    assert "cached text features damaged" in caplog.text


def test_cli_flags_and_table(shapes_data_root, tmp_path, capsys):
    code = main(["run", "--suite", "smoke-retrieval", "--data-root", str(shapes_data_root), "--cache-dir",
                 str(tmp_path / "c"), "--results-dir", str(tmp_path / "r"), "--limit", "30", "--recall-k", "1,2",
                 "--bootstrap", "0", "--retrieval-topk"])
    out = capsys.readouterr().out
    assert code == 0 and "mean_recall" in out and "R@1/2 i2t" in out
    record = json.loads((tmp_path / "r" / "results.jsonl").read_text().splitlines()[-1])
    assert record["zeroshot_retrieval"]["recall_k"] == [1, 2] and "i2t_recall@2" in record["metrics"] and "i2t_recall@5" not in record["metrics"]
    assert record["ci95"] is None and len(record["zeroshot_retrieval"]["retrieval_topk"]["i2t"]) == 30
    assert len(record["zeroshot_retrieval"]["retrieval_topk"]["t2i"][0]) == 2
    assert main(["run", "--suite", "smoke-retrieval", "--recall-k", "0"]) == 2
    assert "recall-k must be a list of distinct positive integers" in capsys.readouterr().err
    assert main(["run", "--suite", "smoke", "--caption-prefix", "x"]) == 2
    assert "applies to the zero-shot retrieval" in capsys.readouterr().err


def test_report_sets_retrieval_next_to_the_published_numbers(smoke_record, tmp_path):
    """A retrieval record flows through the report's task sections and its published-numbers table unchanged."""
    from clipbench.results.records import append_record
    from clipbench.results.report import build_report

    append_record(tmp_path / "results", smoke_record)
    append_record(tmp_path / "results", {**smoke_record, "model": "ViT-B/32", "dataset": "flickr30k"})
    md = build_report(tmp_path / "results", tmp_path / "report").markdown.read_text()
    assert "## Zero-shot retrieval" in md
    # measured 61.5 vs open_clip's ViT-B/32 Flickr30k mean recall (78.9+94.9+98.2+58.8+83.6+90.0)/6 = 84.07
    assert "| ViT-B/32 | flickr30k | zeroshot_retrieval | 61.5 |" in md and "| 84.1 | -22.6 |" in md
