"""SIGKILL at the points where a benchmark run writes something: a checkpoint download, a dataset
download and its extraction, feature extraction, the probe sweep, the results write. Each test
kills a real subprocess, checks that nothing partial carries a final name, reruns, and checks the
rerun reuses what was complete and ends with exactly what an uninterrupted run produces.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import tarfile

import numpy as np
import pytest
from _datasets_fixtures import cifar10_tree
from _engine_fixtures import FakeAdapter, FakeModel, write_tiny_clip
from _fault_fixtures import (
    KILL_SELF,
    SlowServer,
    biggest,
    expect_killed,
    kill_when,
    start_cli,
    start_python,
    temp_files,
)

import clipbench
from clipbench.cli import main
from clipbench.datasets.download import MARKER, download_dataset
from clipbench.features import FORWARD_STATS
from clipbench.models.download import fetch
from clipbench.results.records import read_records
from clipbench.suites import parse_suite

pytestmark = pytest.mark.subprocess

MIB = 1 << 20


@pytest.fixture
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_killed_checkpoint_download_leaves_no_partial_file_and_rerun_completes(tmp_path, no_proxy):
    body = np.random.default_rng(0).bytes(3 * MIB)  # > the 1 MiB read size, so the kill lands mid-file
    sha = hashlib.sha256(body).hexdigest()
    server = SlowServer({"/ckpt/model.pt": body})
    cache, url = tmp_path / "cache", server.url("/ckpt/model.pt")
    folder = cache / "checkpoints"
    try:
        proc = start_python(f"from clipbench.models.download import fetch; fetch({url!r}, {sha!r}, cache_dir={str(cache)!r})")
        kill_when(proc, lambda: biggest(temp_files(folder, "model.pt")) >= MIB)
        assert not (folder / "model.pt").exists() and not (folder / "model.pt.verified.json").exists()
        assert temp_files(folder, "model.pt")  # the killed transfer's partial file is all there is

        server.slow = False
        path = fetch(url, sha, cache_dir=cache)
        assert path == folder / "model.pt" and path.read_bytes() == body
        assert temp_files(folder, "model.pt") == []  # the rerun cleaned up the partial file
        assert server.requests == ["/ckpt/model.pt"] * 2
    finally:
        server.stop()


def _padded_cifar_archive(path):
    """The fake CIFAR-10 tar.gz plus 3 MiB of incompressible padding, so a slow transfer can be killed."""
    staging = path.parent / "cifar-src"
    labels = cifar10_tree(staging)
    (staging / "cifar-10-batches-py" / "padding.bin").write_bytes(np.random.default_rng(1).bytes(3 * MIB))
    with tarfile.open(path, "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path.read_bytes(), labels


def test_killed_dataset_download_and_extraction_leave_nothing_half_published(tmp_path, no_proxy):
    body, labels = _padded_cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    md5 = hashlib.md5(body).hexdigest()
    server = SlowServer({"/cifar-10-python.tar.gz": body})
    root = tmp_path / "data"
    adapter_code = (
        "import dataclasses\n"
        "from clipbench.datasets import Archive, download_dataset, get_dataset\n"
        f"adapter = dataclasses.replace(get_dataset('cifar10'), downloads=(Archive({server.url('/cifar-10-python.tar.gz')!r}, {md5!r}),))\n"
    )
    downloads = root / ".downloads"
    try:
        # 1. killed while the archive streams in
        proc = start_python(adapter_code + f"download_dataset(adapter, {str(root)!r})")
        kill_when(proc, lambda: biggest(temp_files(downloads, "cifar-10-python.tar.gz")) >= MIB)
        assert not (root / "cifar10").exists() and not (downloads / "cifar-10-python.tar.gz").exists()

        # 2. killed after extracting into the staging folder, before the marker and the rename
        server.slow = False
        expect_killed(start_python(
            adapter_code + "import clipbench.datasets.download as d\nreal = d._place\n"
            f"def place(*a):\n    real(*a)\n    {KILL_SELF}\n"
            f"d._place = place\ndownload_dataset(adapter, {str(root)!r})"))
        (staging,) = root.glob(".cifar10.partial-*")
        assert (staging / "cifar-10-batches-py" / "test_batch").is_file() and not (staging / MARKER).exists()
        assert not (root / "cifar10").exists()

        # 3. the rerun reuses the verified archive, discards the staging folder, publishes a complete folder
        import dataclasses

        from clipbench.datasets import Archive, get_dataset

        adapter = dataclasses.replace(get_dataset("cifar10"),
                                      downloads=(Archive(server.url("/cifar-10-python.tar.gz"), md5),))
        assert not adapter.is_present(root)
        target = download_dataset(adapter, root)
        assert (target / MARKER).is_file() and adapter.is_present(root)
        assert list(root.glob(".cifar10.partial-*")) == [] and list(downloads.iterdir()) == []
        assert len(server.requests) == 2  # the third run downloaded nothing
        np.testing.assert_array_equal(adapter.load_split("test", root).labels, labels["test"])
        np.testing.assert_array_equal(adapter.load_split("train", root).labels, labels["train"])
    finally:
        server.stop()


ZS_SUITE = "version: 1\ndatasets: [digits]\ntasks: [zeroshot]\noptions: {batch_size: 2, bootstrap: 50, workers: 0}\n"


def test_killed_feature_extraction_resumes_from_complete_shards(tmp_path, monkeypatch):
    """40 digits in batches of 2: shards [0, 32) and [32, 40); killed after 17 batches, shard one is kept."""
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    (tmp_path / "suite.yaml").write_text(ZS_SUITE)

    def argv(name):
        return ["run", "--model", str(ckpt), "--suite", str(tmp_path / "suite.yaml"), "--limit", "40", "--device",
                "cpu", "--no-progress", "--cache-dir", str(tmp_path / name / "cache"),
                "--results-dir", str(tmp_path / name / "res")]

    expect_killed(start_cli(argv("killed"), CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES="17",
                            CLIPBENCH_TEST_INTERRUPT_MODE="kill"))
    assert not (tmp_path / "killed" / "res" / "results.jsonl").exists()
    (entry,) = [p for p in (tmp_path / "killed" / "cache" / "features").iterdir() if p.is_dir()]
    assert sorted(p.name for p in (entry / "shards").glob("*.npz")) == ["0000000000-0000000032.npz"]
    assert not (entry / "manifest.json").exists()
    partial = entry / "shards" / ".0000000032-0000000040.npz.a1b2c3d4.tmp"  # as if killed while writing a shard
    partial.write_bytes(b"half a shard")

    log = tmp_path / "forwards.log"
    monkeypatch.setenv("CLIPBENCH_TEST_FORWARD_LOG", str(log))
    assert main(argv("killed")) == 0
    assert log.read_text().split() == ["2"] * 4  # only samples 32..39 were encoded again
    assert not partial.exists()  # the killed writer's temporary file was removed under the entry lock
    log.unlink()
    assert main(argv("fresh")) == 0
    assert len(log.read_text().split()) == 20  # an uninterrupted run needs all 20 batches

    (resumed,) = read_records(tmp_path / "killed" / "res")
    (fresh,) = read_records(tmp_path / "fresh" / "res")
    assert resumed["metrics"] == pytest.approx(fresh["metrics"], abs=1e-9) and resumed["ci95"] == fresh["ci95"]
    from clipbench.features import FeatureStore

    load = {name: next(iter(FeatureStore(tmp_path / name / "cache" / "features").entries())) for name in ("killed", "fresh")}
    assert load["killed"].key == load["fresh"].key and load["killed"].complete


PROBE = {"version": 1, "datasets": ["fake10"], "tasks": ["linear_probe"]}
PROBE_RUN = ("import clipbench\nfrom _engine_fixtures import FakeAdapter, FakeModel\n"
             "from clipbench.suites import parse_suite\n"
             f"suite = parse_suite({PROBE!r}, 't', 'lp', check_dataset=None)\n")


def _probe_run(cache, results):
    suite = parse_suite(PROBE, "t", "lp", check_dataset=None)
    return clipbench.run(FakeModel(), suite=suite, datasets=[FakeAdapter(sizes={"train": 100, "test": 40})],
                         cache_dir=cache, results_dir=results, device="cpu", progress=False)


def test_killed_probe_sweep_reruns_to_identical_results(tmp_path):
    """The sweep keeps no partial state: the rerun reuses the cached features and redoes the sweep."""
    cache, res = tmp_path / "cache", tmp_path / "res"
    code = PROBE_RUN + (
        "import clipbench.tasks.linear_probe as lp\nreal = lp.sweep_lambdas\n"
        "def sweep(evaluate):\n    calls = []\n"
        "    def counted(*a):\n        calls.append(1)\n"
        f"        if len(calls) > 3:\n            {KILL_SELF}\n"
        "        return evaluate(*a)\n    return real(counted)\n"
        "lp.sweep_lambdas = sweep\n"
        "clipbench.run(FakeModel(), suite=suite, datasets=[FakeAdapter(sizes={'train': 100, 'test': 40})], "
        f"cache_dir={str(cache)!r}, results_dir={str(res)!r}, device='cpu', progress=False)\n")
    expect_killed(start_python(code))
    assert not (res / "results.jsonl").exists()

    FORWARD_STATS.reset()
    (rerun,) = _probe_run(cache, res)
    assert FORWARD_STATS.batches == 0  # all three splits' features came from the killed run's cache
    (fresh,) = _probe_run(tmp_path / "cache2", tmp_path / "res2")
    for field in ("metrics", "C", "sweep", "ci95", "dataset_fingerprint", "linear_probe"):
        assert rerun[field] == fresh[field], field
    assert len(read_records(res)) == 1


ZS = {"version": 1, "datasets": ["fakea"], "tasks": ["zeroshot"], "options": {"bootstrap": 50}}
RESULTS_RUN = ("import json, os\nfrom pathlib import Path\nimport clipbench\n"
               "from _engine_fixtures import FakeAdapter, FakeModel\nfrom clipbench.suites import parse_suite\n"
               f"suite = parse_suite({ZS!r}, 't', 'zs', check_dataset=None)\n")
KILL_IN_APPEND = """
import clipbench.engine.runner as runner
real, calls = runner.append_record, []
def append(results_dir, record):
    calls.append(1)
    if len(calls) == 2:  # the second record: half a line reaches the disk, then the process dies
        line = json.dumps(record, sort_keys=True).encode()
        with open(Path(results_dir) / "results.jsonl", "ab") as fh:
            fh.write(line[: len(line) // 2]); fh.flush(); os.fsync(fh.fileno())
        KILL
    return real(results_dir, record)
runner.append_record = append
"""
KILL_IN_LEADERBOARD = """
import clipbench.results.records as results
from clipbench.foundations.fileio import atomic_open
real = results.atomic_write_text
def write(path, text):
    if Path(path).name == "leaderboard.csv":  # half the new leaderboard is in its temporary file
        with atomic_open(path, "wb") as fh:
            fh.write(text[: len(text) // 2].encode()); fh.flush(); os.fsync(fh.fileno())
            KILL
    return real(path, text)
results.atomic_write_text = write
"""


def _zs_run(cache, res, model=None):
    suite = parse_suite(ZS, "t", "zs", check_dataset=None)
    return clipbench.run(model or FakeModel(), suite=suite, datasets=[FakeAdapter("fakea"), FakeAdapter("fakeb")],
                         cache_dir=cache, results_dir=res, device="cpu", progress=False)


def _leaderboard(res):
    with open(res / "leaderboard.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("where", ["append", "leaderboard"])
def test_killed_results_write_loses_and_duplicates_no_leaderboard_row(tmp_path, caplog, where):
    cache, res = tmp_path / "cache", tmp_path / "res"
    earlier = _zs_run(cache, res, FakeModel(seed=1, name="earlier-model"))  # results that must survive
    before_jsonl, before_board = (res / "results.jsonl").read_bytes(), (res / "leaderboard.csv").read_bytes()

    hook = (KILL_IN_APPEND if where == "append" else KILL_IN_LEADERBOARD).replace("KILL", KILL_SELF)
    expect_killed(start_python(RESULTS_RUN + hook + "clipbench.run(FakeModel(), suite=suite, datasets=[FakeAdapter("
                               f"'fakea'), FakeAdapter('fakeb')], cache_dir={str(cache)!r}, results_dir={str(res)!r}, "
                               "device='cpu', progress=False)\n"))
    assert (res / "leaderboard.csv").read_bytes() == before_board  # the old leaderboard is intact
    assert (res / "results.jsonl").read_bytes().startswith(before_jsonl)  # earlier records untouched
    killed_records = read_records(res)[len(earlier):]
    assert [r["dataset"] for r in killed_records] == (["fakea"] if where == "append" else ["fakea", "fakeb"])

    with caplog.at_level(logging.WARNING, logger="clipbench.results.records"):
        rerun = _zs_run(cache, res)
    assert ("not a complete JSON record" in caplog.text) == (where == "append")  # the torn line is skipped
    fresh = _zs_run(tmp_path / "cache2", tmp_path / "res2")
    assert [r["metrics"] for r in rerun] == [r["metrics"] for r in fresh]

    # results.jsonl keeps history (the killed run's complete records too); leaderboards show the newest per key
    records = read_records(res)
    assert len(records) == len(earlier) + len(killed_records) + 2
    rows = _leaderboard(res)
    keys = [(r["model"], r["dataset"], r["task"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {(k[0], k[1]) for k in keys} == {(m, d) for m in ("earlier-model", "fake-model") for d in ("fakea", "fakeb")}
    for record in rerun:
        got = {r["metric"]: float(r["value"]) for r in rows if (r["model"], r["dataset"]) == ("fake-model", record["dataset"])}
        assert got == pytest.approx(record["metrics"], abs=1e-4)
        assert next(r for r in rows if r["model"] == "fake-model" and r["dataset"] == record["dataset"])["timestamp"] == record["timestamp"]
    pivot = (res / "leaderboard_pivot.csv").read_text().splitlines()
    assert pivot[0] == "model,task,variant,fakea,fakeb,mean,n_datasets" and len(pivot) == 3
    assert json.loads(json.dumps(records))  # every stored record is complete JSON
    assert not [p for p in os.listdir(res) if p.endswith(".tmp")]  # a killed regeneration leaves no temp file
