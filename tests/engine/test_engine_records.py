"""The engine writes every record the same way, and readers see one shape whatever schema wrote it:
schema-1 records (results/baseline/, and anything written before schema 2) are upgraded on read, so
each task's fields are in ``record[task.name]``; the primary-metric fallback has one home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clipbench.results.records import append_record, pivot_rows, read_records
from clipbench.results.schema import RESULT_SCHEMA, primary_metric, upgrade_record
from clipbench.results.source import primary_rows
from clipbench.tasks.details import task_detail_blocks
from clipbench.tasks.registry import TASKS

BASELINE = Path(__file__).resolve().parents[2] / "results" / "baseline"


def _old(task: str, **fields) -> dict:
    return {"schema_version": 1, "model": "m", "dataset": "d", "task": task, "metrics": {"top1": 50.0},
            "n_samples": 10, **fields}


def test_baseline_records_read_in_todays_shape():
    stored = [json.loads(line) for line in (BASELINE / "results.jsonl").read_text().splitlines()]
    by_task = {r["task"]: r for r in read_records(BASELINE)}
    probe, retrieval = by_task["linear_probe"], by_task["zeroshot_retrieval"]
    old_probe = next(r for r in stored if r["task"] == "linear_probe")
    assert "probe" not in probe and "convergence" not in probe
    assert probe["linear_probe"] == {**old_probe["probe"], "convergence": old_probe["convergence"]}
    assert retrieval["zeroshot_retrieval"]["recall_k"] == [1, 5, 10] and "recall_k" not in retrieval
    assert set(retrieval["metric_ci95"]) == set(retrieval["metrics"])  # engine-level, where schema 2 keeps it
    assert by_task["zeroshot"]["zeroshot"] == {}
    assert all(r["schema_version"] == 1 for r in by_task.values())  # what was stored is still said


@pytest.mark.parametrize("task, old_fields, block", [
    ("zeroshot_retrieval", {"recall_k": [1, 2], "caption_prefix": "a ", "chance": {"mean_recall": 1.0}},
     {"recall_k": [1, 2], "caption_prefix": "a ", "chance": {"mean_recall": 1.0}}),
    ("image_caption_selection", {"per_subset": {"a": {"accuracy": 1.0}}, "n_ties": 0, "tie_rule": "t"},
     {"per_subset": {"a": {"accuracy": 1.0}}, "n_ties": 0, "tie_rule": "t"}),
    ("linear_probe_4shot", {"fewshot_k": 4, "seeds": [0, 1], "per_seed": [], "spread": {}, "probe": {"solver": "x"}},
     {"solver": "x", "fewshot_k": 4, "seeds": [0, 1], "per_seed": [], "spread": {}}),
    ("knn", {"knn": {"k": 5}, "per_class": {"a": 1.0}}, {"k": 5, "per_class": {"a": 1.0}}),
    ("zeroshot", {"per_class": {"a": 1.0}}, {"per_class": {"a": 1.0}}),
    ("image_retrieval", {"image_retrieval": {"k": [1]}}, {"k": [1]}),
])
def test_every_builtin_tasks_schema1_fields_move_into_its_block(task, old_fields, block):
    upgraded = upgrade_record(_old(task, **old_fields))
    name = TASKS.get(task).name if task in TASKS else "linear_probe"
    assert upgraded[name] == block
    assert not set(old_fields) - {name} & set(upgraded)  # nothing left at the top level
    assert upgrade_record(upgraded | {"schema_version": RESULT_SCHEMA}) == upgraded | {"schema_version": RESULT_SCHEMA}


def test_an_unregistered_tasks_old_record_keeps_its_fields():
    old = _old("someone_elses_task", extra=1)
    assert upgrade_record(old) == {**old, "primary_metric": "top1"}


def test_one_home_for_the_primary_metric_fallback(tmp_path):
    """A schema-1 record that names no primary metric is a top-1 row for every reader."""
    append_record(tmp_path, _old("zeroshot"))
    (record,) = read_records(tmp_path)
    assert record["primary_metric"] == primary_metric(_old("zeroshot")) == "top1"
    (row,), _ = primary_rows(tmp_path)
    assert (row.metric, row.value) == ("top1", 50.0)
    assert pivot_rows([record])[1][0]["d"] == 50.0


def test_detail_tables_read_old_and_new_records_alike():
    """The report's task tables come from the tasks' declarations, over upgraded records."""
    old = _old("image_caption_selection", primary_metric="accuracy", metrics={"accuracy": 80.0},
               per_subset={"swap_att": {"accuracy": 70.0, "ci95": {"low": 60.0, "high": 80.0}, "n_items": 100,
                                        "chance": 50.0}})
    new = upgrade_record(old) | {"schema_version": RESULT_SCHEMA, "dataset": "e"}
    views = [_old(task, model="RN50", primary_metric="top1", metrics={"top1": value})
             for task, value in (("zeroshot", 60.0), ("knn", 65.0), ("linear_probe", 75.0))]
    tables = {t.title: t for t in task_detail_blocks([upgrade_record(old), new, *map(upgrade_record, views)],
                                                     {"m": "model m"})}
    selection = tables["Compositionality: accuracy per subset"]
    assert selection.rows == [["model m", "d", "swap_att", "70.0 [60.0, 80.0]", "50.0", "100"],
                              ["model m", "e", "swap_att", "70.0 [60.0, 80.0]", "50.0", "100"]]
    view = tables["Classification views per model"]
    # registration order: zero-shot, the linear probe, k-NN
    assert view.header == ["model", "zero-shot", "linear probe", "k-NN"] and view.rows == [["RN50", "60.0", "75.0",
                                                                                          "65.0"]]
    assert view.figures[0].cells == {"RN50": {"zero-shot": (60.0, None, None), "k-NN": (65.0, None, None),
                                              "linear probe": (75.0, None, None)}}


class _Backend:
    """What model_facts reads of a loaded model (the backends set these attributes)."""

    family, image_resolution, weights_sha256 = "ViT", 224, "0" * 64

    def __init__(self, **attrs) -> None:
        vars(self).update(attrs)

    def num_params(self) -> dict:
        return {"total": 1234}


def test_model_facts_come_from_the_loaded_model():
    from types import SimpleNamespace

    from clipbench.engine.model_facts import model_facts
    from clipbench.models.checkpoints import OPENAI_CHECKPOINTS

    b16 = next(c for c in OPENAI_CHECKPOINTS if c.name == "ViT-B/16")
    assert model_facts(_Backend(weights_sha256=b16.sha256)) == {  # a registered checkpoint, by its bytes
        "architecture": "ViT-B/16", "family": "ViT", "params": b16.params, "image_gflops": b16.image_gflops,
        "resolution": 224}
    openclip = model_facts(_Backend(arch="ViT-L-14-336-quickgelu", image_resolution=336))  # other weights
    assert (openclip["architecture"], openclip["params"], openclip["image_gflops"]) == ("ViT-L/14@336px", 1234,
                                                                                        381.92)
    vision = SimpleNamespace(hidden_size=768, patch_size=32, image_size=224)
    hf = model_facts(_Backend(module=SimpleNamespace(config=SimpleNamespace(vision_config=vision))))
    assert (hf["architecture"], hf["image_gflops"]) == ("ViT-B/32", 8.82)
    unknown = model_facts(_Backend(arch="ViT-bigG-14"))
    assert (unknown["architecture"], unknown["image_gflops"], unknown["params"]) == ("ViT-bigG-14", None, 1234)
