"""Registry-wide contracts (timm's pattern): every registered task, dataset kind, dataset and per-sample
kind is checked against what the engine, the report and the gate assume of it, at small size, so a new
entry that breaks the contract fails here and not in a user's run."""

from __future__ import annotations

import numpy as np
import pytest

from clipbench.datasets.base import DATASET_KINDS, ClassificationAdapter
from clipbench.datasets.registry import DATASETS
from clipbench.engine.options import all_options
from clipbench.results.samples import read_samples, write_sample_table
from clipbench.scoring.samples import BUILDERS, KINDS, build_kind_table, kind_class
from clipbench.tasks.base import Task
from clipbench.tasks.registry import TASKS

TASK_NAMES = [name for name, _ in TASKS.items()]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_declares_what_the_engine_and_report_read(name):
    task = TASKS.get(name)
    assert isinstance(task, Task) and task.name == name and task.title
    assert task.dataset_kinds and set(task.dataset_kinds) <= set(DATASET_KINDS)
    assert task.metrics, "the metrics a task reports name its columns and the gate's rows"
    extra = {"C"}  # core fields a task may show in the run table (the probe's chosen C)
    assert set(task.summary_columns) <= set(task.metrics) | extra
    table = all_options()
    for option in task.options:  # its options are in the one option table, owned by it
        assert table[option.name].owner == name
    assert task.detail_table([], {}) is None  # no records, no table
    assert task.owns_record(name)
    assert task.describe()["task"] == name


@pytest.mark.parametrize("name", sorted(DATASETS.names()))
def test_every_registered_dataset_is_of_a_known_kind_and_declares_its_facts(name):
    adapter = DATASETS.get(name)
    assert adapter.kind in DATASET_KINDS
    assert adapter.splits and adapter.evaluation_split in adapter.splits
    assert any(adapter.kind in task.dataset_kinds for _, task in TASKS.items()), "some task must score it"
    if adapter.kind == "classification":
        assert isinstance(adapter, ClassificationAdapter)
        prompts = adapter.class_prompts()
        assert len(prompts) == len(adapter.classnames) and all(prompts)
    else:
        assert not isinstance(adapter, ClassificationAdapter)


def _columns(kind: str) -> tuple[dict, dict, str]:
    """Small columns of ``kind`` as a task hands them to the engine, its metadata, and a metric it gates."""
    rng = np.random.default_rng(0)
    if kind == "classification":
        return ({"scores": rng.normal(size=(12, 4)).astype(np.float32), "labels": np.arange(12) % 4,
                 "score_kind": "logits"}, {"score_kind": "logits", "classnames": list("abcd")}, "top1")
    if kind == "retrieval":
        text_image = np.repeat(np.arange(6), 2)
        return ({"i2t_rank": rng.integers(0, 3, 6), "t2i_rank": rng.integers(0, 3, 12), "text_image": text_image,
                 "captions": [f"caption {i}" for i in range(12)]}, {"recall_k": [1, 5], "unit": "images"},
                "mean_recall")
    if kind == "outcomes":
        return ({"index": np.arange(10), "outcomes": {"correct": rng.random(10) < 0.5}},
                {"metrics": {"accuracy": "correct"}, "unit": "items"}, "accuracy")
    if kind == "targets":
        from clipbench.scoring.samples.targets import targets_meta
        from clipbench.scoring.targets import ScoredTargets

        targets = ScoredTargets.from_scores(rng.normal(size=(12, 5)), np.arange(12) % 5,
                                            groups={"region": (np.arange(12) % 3, ["a", "b", "c"])}, group_by="region")
        return {"targets": targets}, targets_meta(targets, list("abcde")), "worst_group_top1"
    raise AssertionError(f"per-sample kind {kind!r} has no columns in this contract test: add them")


def test_every_per_sample_kind_has_a_reader_and_a_builder():
    assert set(KINDS) == set(BUILDERS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_per_sample_kind_round_trips_and_pairs_with_itself(kind, tmp_path):
    """Built from a task's columns, written, read back verified, and compared with itself: the same
    samples, the gated metric supported, and no difference."""
    data, meta, metric = _columns(kind)
    record = {"record_id": f"r-{kind}", "model": "m", "dataset": "d", "task": "t", "dataset_fingerprint": "f"}
    record["samples"] = write_sample_table(tmp_path, record, build_kind_table(kind, data), kind, meta)
    log = read_samples(tmp_path, record)
    assert isinstance(log, kind_class(kind)) and len(log) > 0
    assert log.same_samples(log) and log.supports(metric)
    result = log.paired(metric, log, 200, 0)
    assert result.difference == 0 and result.p_value == 1.0
    assert log.describe(record)
