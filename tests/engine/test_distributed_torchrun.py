"""Real torchrun launches on the CPU (gloo, 2 processes) against a single-process run of the same command.

The data: a ``folder:`` dataset of 21 train + 21 test PNGs (odd sizes, not multiples of the batch
size 4), a small random native CLIP saved as a state dict, zero-shot + linear probe. Every launched
process runs with one thread, and so does the single-process reference, so equal batches must give
bit-identical features.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from _distributed_fixtures import BATCH_SIZE, child_env, feature_bytes, stable, torchrun, write_png_dataset
from _engine_fixtures import write_tiny_clip

from clipbench.engine.distributed import rank_range
from clipbench.features import FeatureKey, FeatureStore
from clipbench.results.records import read_records

pytestmark = pytest.mark.subprocess

WORKER = str(Path(__file__).resolve().parents[1] / "_distributed_fixtures.py")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Data, checkpoint, suite, and the single-process reference run (`python -m clipbench run`)."""
    import subprocess
    import sys

    base = tmp_path_factory.mktemp("torchrun")
    data = write_png_dataset(base / "pets")
    ckpt = write_tiny_clip(base / "tiny.pt")
    suite = base / "suite.yaml"
    suite.write_text(f"version: 1\ndatasets: ['folder:{data}']\ntasks: [zeroshot, linear_probe]\n"
                     f"options: {{batch_size: {BATCH_SIZE}, bootstrap: 50, offline: true}}\n")

    def argv(tag: str, *extra: str) -> list[str]:
        return ["run", "--model", str(ckpt), "--suite", str(suite), "--device", "cpu", "--no-progress",
                "--cache-dir", str(base / f"cache-{tag}"), "--results-dir", str(base / f"res-{tag}"), *extra]

    ref = subprocess.run([sys.executable, "-m", "clipbench", *argv("ref")], env=child_env(), cwd=base,
                         capture_output=True, text=True, timeout=240)
    assert ref.returncode == 0, ref.stderr
    return base, argv


def _assert_same_as_reference(base: Path, tag: str) -> None:
    ref_feats, feats = feature_bytes(base / "cache-ref"), feature_bytes(base / f"cache-{tag}")
    assert sorted(feats) == sorted(ref_feats) and len(feats) == 3  # test, probe-train, probe-val
    for name, ref in ref_feats.items():
        assert feats[name] == ref, f"features of {name} differ from the single-process run"
    records = read_records(base / f"res-{tag}")
    assert [r["task"] for r in records] == ["zeroshot", "linear_probe"]  # written once, by rank 0
    assert stable(records) == stable(read_records(base / "res-ref"))


def test_two_ranks_give_exactly_the_single_process_numbers(setup):
    base, argv = setup
    forward_log = base / "forwards-2p"
    proc = torchrun(2, ["-m", "clipbench", *argv("2p")], child_env(CLIPBENCH_TEST_FORWARD_LOG=str(forward_log)),
                    base)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _assert_same_as_reference(base, "2p")
    out = proc.stdout
    assert out.count("results appended to") == 1 and out.count("zeroshot") == 1  # only rank 0 prints
    assert (base / "res-2p" / "leaderboard_pivot.csv").is_file()

    # Each split was cut at the batch-aligned rank boundary: rank 1's range is its own shard.
    store = FeatureStore(base / "cache-2p" / "features")
    for entry in store.entries():
        key = FeatureKey(**json.loads((entry.path / "key.json").read_text()))
        starts = [s.start for s in store.completed_shards(key)]
        expected = sorted({rank_range(key.n_samples, 2, r, BATCH_SIZE)[0] for r in range(2)} - {key.n_samples})
        assert starts == expected, (key.split, key.n_samples, starts)
    n_total = sum(e.key["n_samples"] for e in store.entries())
    assert sum(int(n) for n in forward_log.read_text().split()) == n_total  # each sample encoded once


def test_killed_rank_rerun_recomputes_only_the_missing_samples(setup):
    base, argv = setup
    hooks = {"CLIPBENCH_TEST_SHARD_BATCHES": "1", "CLIPBENCH_TEST_FORWARD_LOG_PREFIX": str(base / "fw-kill")}
    killed = torchrun(2, [WORKER, *argv("kill")], child_env(CLIPBENCH_TEST_KILL_RANK="1", **hooks), base)
    assert killed.returncode != 0  # rank 1 SIGKILLed itself after its first batch; torchrun stops rank 0
    assert not (base / "res-kill" / "results.jsonl").exists()  # nothing scored, nothing written

    store = FeatureStore(base / "cache-kill" / "features")
    (entry,) = store.entries()  # the zero-shot test split is the first split extracted
    key = FeatureKey(**json.loads((entry.path / "key.json").read_text()))
    before = {s.filename: (entry.path / "shards" / s.filename).stat().st_mtime_ns for s in store.completed_shards(key)}
    r1_start, r1_end = rank_range(key.n_samples, 2, 1, BATCH_SIZE)
    assert f"{r1_start:010d}-{r1_start + BATCH_SIZE:010d}.npz" in before  # rank 1's one finished batch
    _, gaps = store.plan(key)
    missing = {r: sum(max(0, min(b, e) - max(a, s)) for a, b in gaps)
               for r, (s, e) in enumerate(rank_range(key.n_samples, 2, r, BATCH_SIZE) for r in range(2))}
    assert missing[1] == r1_end - r1_start - BATCH_SIZE
    for r in range(2):
        Path(f"{base / 'fw-kill'}.rank{r}").unlink(missing_ok=True)

    rerun = torchrun(2, [WORKER, *argv("kill")], child_env(**hooks), base)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    _assert_same_as_reference(base, "kill")

    # Each rank forwarded exactly its missing test samples plus its share of the probe's splits.
    others = [FeatureKey(**json.loads((e.path / "key.json").read_text())) for e in store.entries()
              if e.path != entry.path]
    for r in range(2):
        forwarded = sum(int(n) for n in Path(f"{base / 'fw-kill'}.rank{r}").read_text().split())
        fresh = sum(np.subtract(*rank_range(k.n_samples, 2, r, BATCH_SIZE)[::-1]) for k in others)
        assert forwarded == missing[r] + fresh, (r, forwarded, missing[r], fresh)
    for name, mtime in before.items():  # the shards that survived the kill were reused, not rewritten
        assert (entry.path / "shards" / name).stat().st_mtime_ns == mtime


def test_shard_jobs_runs_each_job_once_and_rank0_writes_the_leaderboard(setup, tmp_path):
    base, argv = setup
    other = write_png_dataset(tmp_path / "more", sizes={"test": 9}, seed=1)
    datasets = f"folder:{base / 'pets'},folder:{other}"
    suite = base / "zs.yaml"
    suite.write_text(f"version: 1\ndatasets: ['folder:{other}']\ntasks: [zeroshot]\n"
                     f"options: {{batch_size: {BATCH_SIZE}, bootstrap: 50}}\n")

    def args(tag: str) -> list[str]:
        a = argv(tag, "--dataset", datasets)
        a[a.index("--suite") + 1] = str(suite)
        return a

    ref = torchrun(1, ["-m", "clipbench", *args("jobs-ref")], child_env(), base)
    assert ref.returncode == 0, ref.stderr
    proc = torchrun(2, [WORKER, *args("jobs"), "--shard-jobs"],
                    child_env(CLIPBENCH_TEST_FORWARD_LOG_PREFIX=str(tmp_path / "fw")), base)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = read_records(base / "res-jobs")
    assert sorted(r["dataset"] for r in records) == sorted(r["dataset"] for r in read_records(base / "res-jobs-ref"))
    assert len(records) == 2
    by_dataset = {r["dataset"]: r for r in stable(read_records(base / "res-jobs-ref"))}
    assert {r["dataset"]: r for r in stable(records)} == by_dataset
    forwards = [sum(int(n) for n in (tmp_path / f"fw.rank{r}").read_text().split()) for r in range(2)]
    assert sorted(forwards) == [9, 21]  # one whole job per rank, no split shared
    pivot = (base / "res-jobs" / "leaderboard_pivot.csv").read_text().splitlines()
    assert len(pivot) == 2 and pivot[1].count(",") == pivot[0].count(",")  # one row, both datasets
    assert proc.stdout.count("results appended to") == 1 and proc.stdout.count("zeroshot") == 2


def test_hung_rank_is_reported_in_one_line_naming_rank_and_phase(setup):
    """Rank 1 hangs after one batch; rank 0 reports it after the stall timeout, not after hours."""
    base, argv = setup
    started = time.monotonic()
    proc = torchrun(2, [WORKER, *argv("hang")], child_env(CLIPBENCH_TEST_HANG_RANK="1",
                                                           CLIPBENCH_DIST_STALL_TIMEOUT="4"), base, timeout=150)
    elapsed = time.monotonic() - started
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("clipbench: error:")]
    assert len(lines) == 1, proc.stderr
    assert "rank 1" in lines[0] and "stalled" in lines[0] and "extracting" in lines[0] and "/test" in lines[0]
    assert "rank 0" not in lines[0].split("while")[0]  # rank 0 finished its own samples
    assert "CLIPBENCH_DIST_STALL_TIMEOUT" in lines[0]
    assert "internal error" not in proc.stderr
    assert elapsed < 140


def test_long_probe_on_rank_0_never_trips_the_stall_timeout(setup, tmp_path):
    """Rank 0's probe on the first dataset outlasts both timeouts while rank 1 moves on to the second
    dataset's splits: nobody waits on rank 0, so the run succeeds with every record."""
    base, argv = setup
    other = write_png_dataset(tmp_path / "more", sizes={"train": 9, "test": 9}, seed=1)
    args = argv("slowprobe", "--dataset", f"folder:{base / 'pets'},folder:{other}")
    proc = torchrun(2, [WORKER, *args], child_env(CLIPBENCH_TEST_SLOW_PROBE_S="7", CLIPBENCH_DIST_STALL_TIMEOUT="4",
                                                  CLIPBENCH_DIST_TIMEOUT_S="6"), base)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = read_records(base / "res-slowprobe")
    assert sorted((Path(r["dataset"]).name, r["task"]) for r in records) == [
        ("more", "linear_probe"), ("more", "zeroshot"), ("pets", "linear_probe"), ("pets", "zeroshot")]
