"""Job-array mode (``clipbench.engine.job_array``): ranks from SLURM, and the same numbers at any world size.

Every rank of a job array is an independent ``clipbench run --rank R --world-size W`` with no
process group, so calling ``clipbench.cli.main`` once per rank, one after another, in this
process is a faithful job array (what runs concurrently in a real one only changes the order in
which shards land). The data: a ``folder:`` dataset of 21 train + 21 test PNGs (not a multiple of
the batch size 4, so world size 8 leaves ranks 6 and 7 without samples), a small random CLIP,
zero-shot + linear probe, one torch thread. The reference is a plain run in the same process.
``test_gloo_process_groups_of_1_2_3_4_and_8_give_the_same_numbers`` forks real torchrun-style ranks
(RANK/WORLD_SIZE/MASTER_ADDR set, a gloo group) from this process: a fork inherits the imported
modules, so eight ranks cost little more than their work.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _distributed_fixtures import BATCH_SIZE, feature_bytes, stable, write_png_dataset
from _engine_fixtures import write_tiny_clip

import clipbench.features.extraction as extraction
from clipbench.cli import main
from clipbench.engine.distributed import ENV_STALL_TIMEOUT, rank_range
from clipbench.engine.job_array import array_context, slurm_rank
from clipbench.features import FORWARD_STATS, FeatureKey, FeatureStore
from clipbench.foundations.errors import ClipbenchError
from clipbench.results.records import read_records

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.mark.parametrize("env, world, expected", [
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "7",
      "SLURM_ARRAY_TASK_COUNT": "8", "SLURM_ARRAY_TASK_STEP": "1"}, None, (3, 8)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "8",  # --array=1-8
      "SLURM_ARRAY_TASK_COUNT": "8"}, None, (0, 8)),
    ({"SLURM_ARRAY_TASK_ID": "10", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_MAX": "12",  # --array=4-12:2
      "SLURM_ARRAY_TASK_COUNT": "5", "SLURM_ARRAY_TASK_STEP": "2"}, None, (3, 5)),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_MAX": "3",  # sbatch --array=3 rerun
      "SLURM_ARRAY_TASK_COUNT": "1"}, 8, (3, 8)),
    ({"SLURM_PROCID": "2", "SLURM_NTASKS": "4"}, None, (2, 4)),  # srun --ntasks 4
    ({"SLURM_PROCID": "2", "SLURM_NTASKS": "4"}, 4, (2, 4)),
])
def test_slurm_rank_from_array_and_srun_variables(env, world, expected):
    assert slurm_rank(env, world) == expected


@pytest.mark.parametrize("env, world, words", [
    ({}, None, "neither SLURM_ARRAY_TASK_ID"),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "7",  # --array=1,5,7
      "SLURM_ARRAY_TASK_COUNT": "3"}, None, "not an evenly spaced range"),
    ({"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_COUNT": "8"}, 8, "--array=0-7"),
    ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "8"}, None, "not an integer"),
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "8"}, None, "SLURM_ARRAY_TASK_MIN is not set"),
    ({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}, 4, "SLURM_NTASKS=2"),
])
def test_slurm_rank_refuses_what_has_no_rank_order(env, world, words):
    with pytest.raises(ClipbenchError, match=words):
        slurm_rank(env, world)


def test_array_context_roles_and_bad_values():
    assert array_context(None, None) is None
    rank, score = array_context(2, 3), array_context(None, 3)
    assert (rank.enabled, rank.is_main, rank.extracts, rank.gather_to_main(1)) == (True, False, True, None)
    assert (score.enabled, score.is_main, score.extracts, score.gather_to_main(1)) == (True, True, False, [1])
    rank.barrier()  # no process group: a no-op
    for args, words in [((1, None), "needs --world-size"), ((3, 3), "not a rank from 0 to 2"),
                        ((None, 0), "positive integer")]:
        with pytest.raises(ClipbenchError, match=words):
            array_context(*args)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    base = tmp_path_factory.mktemp("array")
    data = write_png_dataset(base / "pets")
    ckpts = [write_tiny_clip(base / "tiny.pt"), write_tiny_clip(base / "tiny2.pt", seed=1)]
    suite = base / "suite.yaml"
    suite.write_text(f"version: 1\ndatasets: ['folder:{data}']\ntasks: [zeroshot, linear_probe]\n"
                     f"options: {{batch_size: {BATCH_SIZE}, bootstrap: 50, offline: true, workers: 0, threads: 1}}\n")
    return base, ckpts, suite


@pytest.fixture
def run(job, monkeypatch, capsys):
    """``run(tag, *extra, model=0)``: ``clipbench run`` in this process into cache/results ``tag``; stdout
    (stderr in ``run.err``)."""
    base, ckpts, suite = job
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)

    def _run(tag: str, *extra: str, model: int = 0, expect: int = 0) -> str:
        argv = ["run", "--model", str(ckpts[model]), "--suite", str(suite), "--device", "cpu", "--no-progress",
                "--cache-dir", str(base / f"cache-{tag}"), "--results-dir", str(base / f"res-{tag}"), *extra]
        assert main(argv) == expect
        captured = capsys.readouterr()
        _run.err = captured.err
        return captured.out

    return _run


def _reference(job, run, model: int = 0):
    base = job[0]
    tag = f"ref{model}"
    if not (base / f"res-{tag}" / "results.jsonl").is_file():
        run(tag, model=model)
    return feature_bytes(base / f"cache-{tag}"), stable(read_records(base / f"res-{tag}"))


def _array(run, tag: str, world: int, ranks=None, **kw) -> list[int]:
    """Ranks ``ranks`` (default all) of a ``world``-rank job array, one after another; forwards per rank."""
    forwards = []
    for r in range(world) if ranks is None else ranks:
        FORWARD_STATS.reset()
        out = run(tag, "--rank", str(r), "--world-size", str(world), **kw)
        assert out.startswith(f"job-array rank {r} of {world}:") and "--world-size" in out
        forwards.append(FORWARD_STATS.samples)
    return forwards


def test_every_world_size_gives_bit_identical_features_and_metrics(job, run):
    """World sizes 1, 2, 3, 4 and 8: each rank encodes exactly its batch-aligned range once; the scoring
    step encodes nothing and its records (every metric, CI, C) equal the single-process run's."""
    base = job[0]
    ref_feats, ref_records = _reference(job, run)
    assert len(ref_feats) == 3 and [r["task"] for r in ref_records] == ["zeroshot", "linear_probe"]
    keys = [FeatureKey(**json.loads((e.path / "key.json").read_text()))
            for e in FeatureStore(base / "cache-ref0" / "features").entries()]
    for world in (1, 2, 3, 4, 8):
        tag = f"w{world}"
        forwards = _array(run, tag, world)
        expected = [sum(np.subtract(*rank_range(k.n_samples, world, r, BATCH_SIZE)[::-1]) for k in keys)
                    for r in range(world)]
        assert forwards == expected, (world, forwards, expected)
        assert not (base / f"res-{tag}" / "results.jsonl").exists()  # ranks never score
        FORWARD_STATS.reset()
        out = run(tag, "--world-size", str(world))
        assert FORWARD_STATS.batches == 0 and "results appended to" in out
        assert feature_bytes(base / f"cache-{tag}") == ref_feats, f"features differ at world size {world}"
        assert stable(read_records(base / f"res-{tag}")) == ref_records, f"records differ at world size {world}"


def test_killed_at_world_size_4_resumes_at_3_and_a_missing_rank_is_named(job, run, monkeypatch):
    base = job[0]
    ref_feats, ref_records = _reference(job, run)
    monkeypatch.setattr(extraction, "SHARD_BATCHES", 1)  # one shard per batch: a killed rank keeps its work
    _array(run, "kill", 4, ranks=[0, 2])
    monkeypatch.setenv("CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES", "1")
    FORWARD_STATS.reset()
    run("kill", "--rank", "1", "--world-size", "4", expect=130)  # interrupted after its first of two batches
    monkeypatch.delenv("CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES")
    # rank 3 never comes: the scoring step names ranks 1 and 3 once nothing moved for the stall timeout
    monkeypatch.setenv(ENV_STALL_TIMEOUT, "0.3")
    run("kill", "--world-size", "4", expect=2)
    err = [line for line in run.err.splitlines() if line.startswith("clipbench: error:")]
    assert len(err) == 1 and "stalled" in err[0] and "never started" in err[0] and "scoring step" in err[0]
    assert "rank 1 (" in err[0] and "rank 3 (" in err[0] and "rank 2 (" not in err[0] and "rank 0 (" not in err[0]
    assert not (base / "res-kill" / "results.jsonl").exists()

    store = FeatureStore(base / "cache-kill" / "features")
    keys = [FeatureKey(**json.loads((e.path / "key.json").read_text())) for e in store.entries()]
    assert len(keys) == 3  # ranks 0 and 2 did their share of all three splits
    missing = 0
    for key in keys:
        gaps = store.plan(key)[1]
        r1, r3 = (rank_range(key.n_samples, 4, r, BATCH_SIZE) for r in (1, 3))
        kept = BATCH_SIZE if key.split == "test" else 0  # rank 1 died after its first test batch
        assert sum(b - a for a, b in gaps) == (r1[1] - r1[0] - kept) + (r3[1] - r3[0]), key.split
        missing += sum(b - a for a, b in gaps)
    assert missing > 0
    forwards = _array(run, "kill", 3)  # resumed with three ranks: only the missing samples are encoded
    assert sum(forwards) == missing
    run("kill", "--world-size", "3")
    assert feature_bytes(base / "cache-kill") == ref_feats
    assert stable(read_records(base / "res-kill")) == ref_records


def test_two_job_arrays_share_one_cache_and_one_results_dir(job, run, monkeypatch):
    """Two arrays (two models, world sizes 2 and 3) interleaved rank by rank into one cache and one
    results dir: each scores exactly its model's single-process numbers; resubmitting the first array
    (another world size) encodes nothing."""
    base = job[0]
    refs = [_reference(job, run, model=m) for m in (0, 1)]
    for step in [(0, 2, 0), (1, 3, 0), (1, 3, 1), (0, 2, 1), (1, 3, 2)]:
        model, world, rank = step
        _array(run, "shared", world, ranks=[rank], model=model)
    run("shared", "--world-size", "3", model=1)
    run("shared", "--world-size", "2", model=0)
    feats = feature_bytes(base / "cache-shared")
    assert len(feats) == 6 and feats == {**refs[0][0], **refs[1][0]}
    records = read_records(base / "res-shared")
    assert stable(records) == refs[1][1] + refs[0][1]
    assert _array(run, "shared", 4, model=0) == [0, 0, 0, 0]


@pytest.mark.subprocess
def test_gloo_process_groups_of_1_2_3_4_and_8_give_the_same_numbers(job, run):
    """Real process groups (gloo), one forked process per rank, at world sizes 1, 2, 3, 4 and 8 (torchrun
    itself launches 2 in test_distributed_torchrun.py): rank 0's features and records equal the
    single-process run's, and each rank encoded exactly its batch-aligned range."""
    from _distributed_fixtures import fork_ranks, free_port

    base, ckpts, suite = job
    ref_feats, ref_records = _reference(job, run)
    keys = [FeatureKey(**json.loads((e.path / "key.json").read_text()))
            for e in FeatureStore(base / "cache-ref0" / "features").entries()]
    for world in (1, 2, 3, 4, 8):
        tag, port = f"gloo{world}", str(free_port())
        argv = ["run", "--model", str(ckpts[0]), "--suite", str(suite), "--device", "cpu", "--no-progress",
                "--cache-dir", str(base / f"cache-{tag}"), "--results-dir", str(base / f"res-{tag}")]
        codes = fork_ranks(world, lambda r, argv=argv: argv, lambda r, tag=tag, world=world, port=port: dict(
            RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
            CLIPBENCH_TEST_FORWARD_LOG=str(base / f"forwards-{tag}.rank{r}")))
        assert codes == [0] * world, (world, codes)
        assert feature_bytes(base / f"cache-{tag}") == ref_feats, f"features differ with {world} gloo ranks"
        assert stable(read_records(base / f"res-{tag}")) == ref_records, f"records differ with {world} gloo ranks"
        for r in range(world):
            path = base / f"forwards-{tag}.rank{r}"
            forwarded = sum(int(n) for n in path.read_text().split()) if path.exists() else 0
            assert forwarded == sum(np.subtract(*rank_range(k.n_samples, world, r, BATCH_SIZE)[::-1]) for k in keys)


def test_slurm_array_variables_give_the_ranks_and_launch_mistakes_are_one_line(job, run, monkeypatch):
    """``--slurm`` in two array tasks (``--array=1-2``: the offset is minded), then the scoring step."""
    base = job[0]
    _, ref_records = _reference(job, run)
    for task in (1, 2):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(task))
        monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
        monkeypatch.setenv("SLURM_ARRAY_TASK_MAX", "2")
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
        assert run("slurm", "--slurm").startswith(f"job-array rank {task - 1} of 2:")
    assert "give --rank or --slurm, not both" in (run("slurm", "--slurm", "--rank", "0", expect=2) or run.err)
    for var in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(var)
    run("slurm", "--world-size", "2")
    assert stable(read_records(base / "res-slurm")) == ref_records
    for var, value in zip(TORCHRUN_VARS, ("1", "2", "1", "127.0.0.1", "29599"), strict=True):
        monkeypatch.setenv(var, value)
    run("slurm", "--rank", "1", "--world-size", "2", expect=2)  # refused before any process group is joined
    assert "under torchrun the launcher gives each process its rank" in run.err


def test_a_split_a_task_asks_for_late_is_extracted_by_every_rank(job, run, monkeypatch):
    """--calibration-temperature fits on the validation split after scoring the test split: every rank
    extracts its share of both before leaving the task, so the scoring step does not wait for ever (zero-shot
    alone: no probe task extracts the validation split)."""
    base = job[0]
    monkeypatch.setenv(ENV_STALL_TIMEOUT, "5")  # what a missing share would cost before the stall error
    run("calref", "--task", "zeroshot", "--calibration-temperature")
    for r in range(3):
        run("cal", "--task", "zeroshot", "--calibration-temperature", "--rank", str(r), "--world-size", "3")
    run("cal", "--task", "zeroshot", "--calibration-temperature", "--world-size", "3")
    assert feature_bytes(base / "cache-cal") == feature_bytes(base / "cache-calref")
    records = stable(read_records(base / "res-cal"))
    assert records == stable(read_records(base / "res-calref")) and "calibration_temperature_val" in records[0]["zeroshot"]
