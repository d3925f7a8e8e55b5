"""clipbench.engine.distributed without launching processes: the index split, launch detection, world size 1."""

from __future__ import annotations

import json

import pytest
import torch.distributed as torch_dist
from _distributed_fixtures import BATCH_SIZE, write_png_dataset
from _engine_fixtures import write_tiny_clip

from clipbench.cli import main
from clipbench.engine.distributed import DistContext, balanced_ranges, launch_env, rank_range, session
from clipbench.foundations.errors import ClipbenchError

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 21, 64, 1001])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("align", [1, 4, 256])
def test_rank_ranges_tile_every_index_once_on_batch_boundaries(n, world, align):
    ranges = [rank_range(n, world, r, align) for r in range(world)]
    covered = [i for a, b in ranges for i in range(a, b)]
    assert covered == list(range(n))  # contiguous, in rank order, no padding, no duplicates
    for a, b in ranges:
        assert (a % align == 0 or a == n) and (b % align == 0 or b == n)
    sizes = [-(-(b - a) // align) for a, b in ranges]  # batches per rank differ by at most one
    assert max(sizes) - min(sizes) <= 1


def test_balanced_ranges():
    assert balanced_ranges(5, 2) == [(0, 3), (3, 5)]
    assert balanced_ranges(1, 3) == [(0, 1), (1, 1), (1, 1)]
    with pytest.raises(ValueError):
        balanced_ranges(3, 0)


def test_launch_env_detection_and_bad_values():
    assert launch_env({}) is None
    env = launch_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "29500"})
    assert (env.rank, env.world_size, env.local_rank, env.master_addr) == (1, 2, 1, "h")
    assert launch_env({"RANK": "0", "WORLD_SIZE": "1"}).local_rank == 0  # world 1 needs no rendezvous
    for bad, words in [({"RANK": "0"}, "WORLD_SIZE is not set"),
                       ({"RANK": "x", "WORLD_SIZE": "2"}, "not an integer"),
                       ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "inconsistent"),
                       ({"RANK": "0", "WORLD_SIZE": "2"}, "MASTER_ADDR and MASTER_PORT")]:
        with pytest.raises(ClipbenchError, match=words):
            launch_env(bad)


def test_session_without_launcher_is_rank_zero_of_one(monkeypatch):
    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    with session("cpu") as ctx:
        assert (ctx.rank, ctx.world_size, ctx.enabled, ctx.is_main) == (0, 1, False, True)
        ctx.barrier()  # no-op
        assert ctx.gather_to_main({"a": 1}) == [{"a": 1}]
    assert not torch_dist.is_initialized()


def test_torchrun_world_size_one_equals_plain_run(tmp_path, monkeypatch, capsys):
    """The environment torchrun gives a single process changes nothing: same records, same table."""
    data = write_png_dataset(tmp_path / "pets")
    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    (tmp_path / "suite.yaml").write_text(f"version: 1\ndatasets: ['folder:{data}']\ntasks: [zeroshot]\n"
                                         f"options: {{batch_size: {BATCH_SIZE}, bootstrap: 50}}\n")

    def run(tag: str) -> tuple[list[dict], str]:
        argv = ["run", "--model", str(ckpt), "--suite", str(tmp_path / "suite.yaml"), "--device", "cpu",
                "--cache-dir", str(tmp_path / f"cache-{tag}"), "--results-dir", str(tmp_path / f"res-{tag}"),
                "--no-progress"]
        assert main(argv) == 0
        out = capsys.readouterr().out.replace(str(tmp_path / f"res-{tag}"), "RES")
        lines = (tmp_path / f"res-{tag}" / "results.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines], out

    for var in TORCHRUN_VARS:
        monkeypatch.delenv(var, raising=False)
    plain, plain_out = run("plain")
    for var, value in zip(TORCHRUN_VARS, ("0", "1", "0", "127.0.0.1", "29599"), strict=True):
        monkeypatch.setenv(var, value)
    single, single_out = run("single")
    assert not torch_dist.is_initialized()
    volatile = {"record_id", "timestamp", "time_extract_s", "time_task_s", "cost", "samples"}
    assert [{k: v for k, v in r.items() if k not in volatile} for r in single] == \
           [{k: v for k, v in r.items() if k not in volatile} for r in plain]
    assert single_out == plain_out and "results appended to RES" in plain_out


class _FakeStore:
    """``plan`` answers from a script of gap lists, one per poll (the last one repeats)."""

    def __init__(self, script):
        self.script, self.polls = list(script), 0

    def plan(self, key):
        gaps = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        return [], gaps


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _key_split(n=40):
    from types import SimpleNamespace

    return SimpleNamespace(n_samples=n), SimpleNamespace(dataset_name="pets", split="test")


def test_wait_for_shards_returns_when_every_range_is_covered():
    from clipbench.engine.distributed import wait_for_shards

    key, split = _key_split()
    clock = _Clock()
    store = _FakeStore([[(20, 40)], [(28, 40)], [(36, 40)], []])
    wait_for_shards(store, key, split, DistContext(0, 2), 4, timeout=1.0, poll=0.9, clock=clock, sleep=clock.sleep)
    assert store.polls == 4  # progress on every poll, so 2.7 s in total never counts as a stall


def test_wait_for_shards_names_the_stalled_rank_and_the_phase():
    from clipbench.engine.distributed import wait_for_shards

    key, split = _key_split()
    clock = _Clock()
    store = _FakeStore([[(20, 40)], [(24, 40)]])  # rank 1 wrote one shard, then nothing
    with pytest.raises(ClipbenchError) as info:
        wait_for_shards(store, key, split, DistContext(0, 3), 4, timeout=5.0, poll=1.0, clock=clock,
                        sleep=clock.sleep)
    message = str(info.value)
    assert "\n" not in message and "stalled" in message and "pets/test" in message and "extracting" in message
    # 40 samples, batch 4, 3 ranks: [0, 16), [16, 28), [28, 40); 24-28 are rank 1's, 28-40 rank 2's
    assert "rank 1 (4 of its samples [16, 28) missing)" in message
    assert "rank 2 (12 of its samples [28, 40) missing)" in message and "rank 0 (" not in message
    assert 5.0 < clock.now <= 7.0  # reported right after the timeout


@pytest.mark.parametrize("value, expected", [(None, 300.0), ("2.5", 2.5), ("600", 600.0)])
def test_stall_timeout_from_the_environment(monkeypatch, value, expected):
    from clipbench.engine.distributed import ENV_STALL_TIMEOUT, stall_timeout

    if value is None:
        monkeypatch.delenv(ENV_STALL_TIMEOUT, raising=False)
    else:
        monkeypatch.setenv(ENV_STALL_TIMEOUT, value)
    assert stall_timeout() == expected


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf"])
def test_bad_stall_timeout_is_one_line(monkeypatch, value):
    from clipbench.engine.distributed import ENV_STALL_TIMEOUT, stall_timeout

    monkeypatch.setenv(ENV_STALL_TIMEOUT, value)
    with pytest.raises(ClipbenchError, match="CLIPBENCH_DIST_STALL_TIMEOUT"):
        stall_timeout()
