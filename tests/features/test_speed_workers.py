"""`workers: auto` (the default): resolved per device and split size; absurd counts are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _engine_fixtures import FakeModel, make_split

from clipbench.cli import main
from clipbench.engine.options import defaults
from clipbench.features import FeatureStore, extract_features
from clipbench.foundations import workers as w


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(w.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(w.os, "cpu_count", lambda: 8)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)


def test_auto_is_the_default():
    assert defaults()["workers"] == "auto"


def test_auto_resolves_by_device_and_split_size(eight_cpus, monkeypatch):
    assert w.resolve_workers("auto", torch.device("cpu"), w.CPU_INLINE_SAMPLES) == 0  # one batch: decode inline
    assert w.resolve_workers("auto", "cpu", w.CPU_INLINE_SAMPLES + 1) == 2  # one worker per four CPUs
    assert w.resolve_workers("auto", torch.device("cuda", 0), 10) == 8  # every CPU feeds a GPU
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun: four ranks share the eight CPUs
    assert w.resolve_workers("auto", "cuda:1", 10) == 2
    assert w.resolve_workers(3, "cuda", 10) == 3 and w.resolve_workers(0, "cuda", 10) == 0


def test_loader_options_pin_and_prefetch_on_cuda_only(eight_cpus):
    cuda = w.loader_options("auto", torch.device("cuda"), 100)
    assert cuda == {"num_workers": 8, "pin_memory": True, "persistent_workers": False, "prefetch_factor": 4}
    cpu = w.loader_options(0, torch.device("cpu"), 100)
    assert cpu == {"num_workers": 0, "pin_memory": False, "persistent_workers": False}
    assert w.loader_options(1, "cpu", 100)["prefetch_factor"] == 2


def test_option_check(eight_cpus):
    assert w.workers_ok("auto") and w.workers_ok(0) and w.workers_ok(32)
    assert not w.workers_ok(33) and not w.workers_ok(-1) and not w.workers_ok(True) and not w.workers_ok("4")
    assert w.workers_flag("AUTO") == "auto" and w.workers_flag("3") == 3


@pytest.mark.parametrize("value,fragment", [("999", "workers must be 'auto' or an integer from 0 to"),
                                            ("-1", "--workers must be 'auto' or an integer from 0 to")])
def test_bad_worker_counts_are_one_line_errors(tmp_path, capsys, value, fragment):
    code = main(["run", "--suite", "smoke", "--device", "cpu", "--workers", value, "--results-dir",
                 str(tmp_path / "res"), "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("clipbench: error:") and err.count("\n") == 1, err
    assert fragment in err and value in err


def test_workers_flag_rejects_words(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--workers", "many"])
    assert exc.value.code == 2 and "expected 'auto' or an integer" in capsys.readouterr().err


def test_extraction_with_auto_workers_matches_inline(tmp_path, monkeypatch):
    model, split = FakeModel(), make_split(12)
    seen = []
    real = torch.utils.data.DataLoader  # imported by extraction when it extracts
    monkeypatch.setattr(torch.utils.data, "DataLoader", lambda *a, **k: seen.append(k) or real(*a, **k))
    inline = extract_features(model, split, FeatureStore(tmp_path / "a"), batch_size=5, workers=0, progress=False)
    auto = extract_features(model, split, FeatureStore(tmp_path / "b"), batch_size=5, workers="auto", progress=False)
    monkeypatch.setattr(w, "CPU_INLINE_SAMPLES", 4)  # now the split counts as large: one worker
    pooled = extract_features(model, split, FeatureStore(tmp_path / "c"), batch_size=5, workers="auto", progress=False)
    assert [k["num_workers"] for k in seen] == [0, 0, max(1, w.cpu_share() // 4)]
    np.testing.assert_array_equal(inline.features, auto.features)
    np.testing.assert_array_equal(inline.features, pooled.features)
