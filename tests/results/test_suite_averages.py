"""The suites' one-number averages: hand-computed values, missing datasets named, the pivot's columns."""

from __future__ import annotations

import pytest

from clipbench.results.records import pivot_rows, record_variant
from clipbench.results.suite_averages import (
    AVERAGES,
    DATACOMP_38,
    SUITE_AVERAGES,
    describe,
    main_value,
    suite_average_rows,
    summary_lines,
)


def _rec(dataset, value, task="zeroshot", model="m", metric="top1", suite="datacomp", **metrics):
    return {"model": model, "dataset": dataset, "task": task, "primary_metric": metric, "suite": suite,
            "metrics": {metric: value, **metrics}, "limit": None, "precision": "fp32"}


def test_datacomp_groups_are_datacomps():
    assert len(DATACOMP_38) == 38 and len(set(DATACOMP_38)) == 38
    assert set(AVERAGES["datacomp_vtab"].datasets) <= set(DATACOMP_38) and len(AVERAGES["datacomp_vtab"].datasets) == 13
    assert AVERAGES["imagenet_dist_shifts"].datasets == ("imagenet_sketch", "imagenet_v2", "imagenet_a", "imagenet_o",
                                                         "imagenet_r", "objectnet")
    assert "imagenet1k" not in AVERAGES["imagenet_dist_shifts"].datasets
    assert len(AVERAGES["clip_paper_average"].datasets) == 27 and len(AVERAGES["vtab_average"].datasets) == 19
    assert {"fairface", "utkface"}.isdisjoint(DATACOMP_38)


def test_retrieval_counts_mean_recall_at_1_and_other_protocols_do_not_count():
    flickr = _rec("flickr30k", 70.0, task="zeroshot_retrieval", metric="mean_recall",
                  **{"i2t_recall@1": 80.0, "t2i_recall@1": 60.0})
    assert main_value(flickr) == 70.0  # (80 + 60) / 2, not mean_recall over every k
    flickr["metrics"]["mean_recall"] = 90.0
    assert main_value(flickr) == 70.0
    records = [flickr, _rec("mscoco_captions", 0, task="zeroshot_retrieval", metric="mean_recall",
                            **{"i2t_recall@1": 50.0, "t2i_recall@1": 30.0}),
               _rec("winogavil", 61.0, task="association", metric="jaccard", jaccard_10_12=55.0),  # DataComp's
               _rec("cifar10", 99.0, task="linear_probe")]
    rows = {r["average"]: r for r in suite_average_rows(records, record_variant)}
    assert rows["retrieval"]["value"] == pytest.approx((70.0 + 40.0 + 55.0) / 3) and rows["retrieval"]["n"] == 3
    assert "cifar10" in rows["datacomp_average"]["missing"]  # the probe record is another protocol


def test_partial_run_reports_the_average_over_what_it_had_with_the_count():
    records = [_rec("imagenet_sketch", 40.0), _rec("imagenet_a", 30.0), _rec("objectnet", 50.0),
               _rec("imagenet1k", 60.0), _rec("caltech101", 80.0, metric="mean_per_class_recall")]
    rows = {r["average"]: r for r in suite_average_rows(records, record_variant)}
    shifts = rows["imagenet_dist_shifts"]
    assert shifts["value"] == pytest.approx(40.0) and (shifts["n"], shifts["of"]) == (3, 6)
    assert shifts["missing"] == ["imagenet_v2", "imagenet_o", "imagenet_r"]
    assert rows["imagenet"]["value"] == 60.0 and rows["imagenet"]["n"] == 1
    assert rows["datacomp_average"]["value"] == pytest.approx((40 + 30 + 50 + 60 + 80) / 5)
    text = describe(shifts)
    assert "40.00 over 3/6" in text and "missing: imagenet_v2, imagenet_o, imagenet_r" in text
    lines = summary_lines(records, record_variant)
    assert any("DataComp average (38 tasks): 52.00 over 5/38" in line for line in lines)
    assert not any("CLIP paper" in line for line in lines)  # only the suite's own averages


def test_newest_record_per_dataset_and_models_and_variants_apart():
    records = [_rec("imagenet1k", 10.0), _rec("imagenet1k", 20.0), _rec("imagenet1k", 90.0, model="other"),
               {**_rec("imagenet1k", 5.0), "limit": 20}]
    rows = [(r["model"], r["variant"], r["value"]) for r in suite_average_rows(records, record_variant, ["imagenet"])]
    assert sorted(rows) == [("m", "", 20.0), ("m", "limit=20", 5.0), ("other", "", 90.0)]


def test_pivot_has_the_averages_as_columns():
    records = [_rec("imagenet_sketch", 40.0), _rec("objectnet", 50.0), _rec("cifar10", 99.0, task="linear_probe")]
    columns, rows = pivot_rows(records)
    assert "avg:imagenet_dist_shifts" in columns and "avg:imagenet_dist_shifts:n" in columns
    assert "avg:clip_paper_average" not in columns  # no dataset of it was run
    zs = next(r for r in rows if r["task"] == "zeroshot")
    assert zs["avg:imagenet_dist_shifts"] == pytest.approx(45.0) and zs["avg:imagenet_dist_shifts:n"] == "2/6"


def test_every_suite_with_averages_is_a_builtin_suite_holding_their_datasets():
    from clipbench.suites import load_suite

    for suite, names in SUITE_AVERAGES.items():
        datasets = set(load_suite(suite, check_dataset=None).datasets)
        for name in names:
            assert set(AVERAGES[name].datasets) <= datasets, (suite, name)


def test_published_averages_are_open_clips_for_openai_weights():
    from clipbench.results.report.averages import _published

    assert _published("ViT-B/32")["datacomp_average"] == ("open_clip", pytest.approx(52.45, abs=0.01))
    assert _published("openclip:ViT-L-14-336/openai")["datacomp_average"][1] == pytest.approx(62.84, abs=0.01)
    assert _published("ViT-B/16")["objectnet"][1] == pytest.approx(55.31)
    assert "datacomp_average" not in _published("clipbench-tiny")
