"""Data-parallel runs under torchrun: one process per GPU (or CPU worker), on one node or many.

``clipbench run`` launched by ``torchrun --nproc_per_node N`` (or a multi-node rendezvous) reads
torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``),
joins the process group (NCCL for CUDA devices, gloo for the CPU) and splits work in one of two ways:

* **sharded extraction** (default): every split's sample indices are cut into one contiguous,
  batch-aligned range per rank (no padding, no duplicates, unlike ``DistributedSampler``); each
  rank writes its range as shards of the feature store (which all ranks share), and rank 0
  assembles them in order and alone runs the tasks and writes results. Because the ranges start on
  multiples of the batch size, every batch holds exactly the samples it holds in a single-process
  run, so the features are the same numbers. Shards already in the store are skipped, so rerunning
  after a failed rank recomputes only that rank's missing samples.

  There is no collective in this mode. Ranks other than 0 write their shards of every split and
  exit; rank 0 waits on the *feature store's progress*: it polls for the other ranks' shards and
  reports a peer that produced none for ``CLIPBENCH_DIST_STALL_TIMEOUT`` seconds (default 300) in
  one line naming the rank, the split and the samples (a hung or dead peer). Rank 0's own long
  work (a probe's C sweep) never trips it, since nobody waits on rank 0.
* **sharded jobs** (``--shard-jobs``): each rank runs its part of the cost-balanced plan
  (``clipbench.engine.balance``: whole (model, dataset) jobs and pieces of big ones) end to end;
  records are appended with the locked JSONL append and rank 0 regenerates the leaderboards once,
  after a gather.

Job arrays (``clipbench.engine.job_array``) use the same ranges and the same waiting with no
process group at all.

A plain launch and a torchrun launch with one process take the same single-process path.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from clipbench.foundations import torch_env
from clipbench.foundations.errors import ClipbenchError

log = logging.getLogger(__name__)

#: Seconds a collective may wait (joining the group; the records gather of ``--shard-jobs``, where
#: ranks finish their jobs at different times, so the default is generous).
ENV_TIMEOUT = "CLIPBENCH_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 4 * 3600

#: Seconds rank 0 waits for a peer's next feature shard before reporting the peer as stalled. One
#: shard is at most 16 batches (``features.extraction.SHARD_BATCHES``); raise this for very slow ranks.
ENV_STALL_TIMEOUT = "CLIPBENCH_DIST_STALL_TIMEOUT"
DEFAULT_STALL_TIMEOUT_S = 300.0
POLL_INTERVAL_S = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class LaunchEnv:
    """What torchrun (or any launcher following its conventions) told this process."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str | None
    master_port: str | None


def _env_int(environ: Mapping[str, str], name: str) -> int:
    value = environ.get(name)
    if value is None:
        raise ClipbenchError(f"distributed launch: {name} is not set (torchrun sets RANK, WORLD_SIZE and LOCAL_RANK)")
    try:
        return int(value)
    except ValueError:
        raise ClipbenchError(f"distributed launch: {name}={value!r} is not an integer") from None


def launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """The launch environment, or None for a plain (non-torchrun) launch."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ and "WORLD_SIZE" not in environ:
        return None
    rank, world = _env_int(environ, "RANK"), _env_int(environ, "WORLD_SIZE")
    local_rank = _env_int(environ, "LOCAL_RANK") if "LOCAL_RANK" in environ else rank
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise ClipbenchError(f"distributed launch: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local_rank} "
                             "are inconsistent (need 0 <= RANK < WORLD_SIZE)")
    addr, port = environ.get("MASTER_ADDR"), environ.get("MASTER_PORT")
    if world > 1 and (not addr or not port):
        raise ClipbenchError("distributed launch: MASTER_ADDR and MASTER_PORT must be set when WORLD_SIZE > 1 "
                             "(launch with torchrun, which sets them)")
    return LaunchEnv(rank, world, local_rank, addr, port)


def env_rank() -> int:
    """This process's rank from the environment (0 for a plain launch); valid after the group is gone."""
    env = launch_env()
    return env.rank if env else 0


def is_main_process() -> bool:
    return env_rank() == 0


def balanced_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """[0, n) cut into ``parts`` contiguous ranges whose lengths differ by at most one (earlier ones longer)."""
    if parts < 1 or n < 0:
        raise ValueError(f"cannot cut {n} items into {parts} parts")
    base, extra = divmod(n, parts)
    out, cursor = [], 0
    for i in range(parts):
        stop = cursor + base + (1 if i < extra else 0)
        out.append((cursor, stop))
        cursor = stop
    return out


def rank_range(n_samples: int, world_size: int, rank: int, align: int = 1) -> tuple[int, int]:
    """Rank ``rank``'s contiguous share [start, end) of ``n_samples``, cut on multiples of ``align``.

    Whole ``align``-blocks (batches) are dealt out as evenly as possible; the last rank with work
    ends at ``n_samples``; ranks beyond the number of blocks get an empty range. The union over
    ranks is exactly [0, n_samples), each index once.
    """
    if align < 1:
        raise ValueError(f"align must be positive, got {align}")
    blocks = -(-n_samples // align)
    a, b = balanced_ranges(blocks, world_size)[rank]
    return min(a * align, n_samples), min(b * align, n_samples)


@dataclass
class DistContext:
    """This process's place in the run; a single-process run is rank 0 of 1 and every collective is a no-op."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    #: job-array mode (``clipbench.engine.job_array``, no process group): "rank" extracts its share and never
    #: scores, "score" (the final step) extracts nothing, waits for every rank's shards and scores
    array: str | None = None
    #: a piece of a job of the cost-balanced plan (``engine.balance``): the rank holding each piece, for
    #: messages; progress on any feature entry counts while its first piece waits (the others may be busy
    #: with other jobs' pieces first)
    holders: tuple[int, ...] | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or self.array is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0 if self.array is None else self.array == "score"

    @property
    def extracts(self) -> bool:
        return self.array != "score"

    def barrier(self) -> None:
        if self.backend is not None:
            import torch.distributed as torch_dist

            torch_dist.barrier()

    def gather_to_main(self, obj: T) -> list[T] | None:
        """Every rank's ``obj`` (picklable) in rank order on rank 0; None on the other ranks."""
        if self.backend is None:  # no process group (one process, or a job-array rank): only its own
            return [obj] if self.is_main else None
        import torch.distributed as torch_dist

        gathered: list[Any] = [None] * self.world_size
        torch_dist.all_gather_object(gathered, obj)  # works on gloo and NCCL alike
        return gathered if self.is_main else None


def _timeout() -> _dt.timedelta:
    value = os.environ.get(ENV_TIMEOUT)
    try:
        seconds = float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ClipbenchError(f"{ENV_TIMEOUT}={value!r} is not a number of seconds") from None
    return _dt.timedelta(seconds=seconds)


def stall_timeout() -> float:
    """``CLIPBENCH_DIST_STALL_TIMEOUT`` in seconds (default 300); a one-line error if it is not a positive number."""
    value = os.environ.get(ENV_STALL_TIMEOUT)
    try:
        seconds = float(value) if value else DEFAULT_STALL_TIMEOUT_S
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ClipbenchError(f"{ENV_STALL_TIMEOUT}={value!r} is not a positive number of seconds")
    return seconds


def wait_for_shards(store, key, split, ctx: DistContext, batch_size: int, *, timeout: float | None = None,
                    poll: float = POLL_INTERVAL_S, clock=time.monotonic, sleep=time.sleep) -> None:
    """Rank 0: return once every rank's range of ``key`` is covered by complete shards in ``store``.

    Progress is any newly covered sample; ``timeout`` seconds without progress raise a one-line
    ``ClipbenchError`` naming the rank(s) whose samples are still missing and what they were doing.
    """
    timeout = stall_timeout() if timeout is None else timeout
    covered_before, last_progress = -1, clock()
    while True:
        _, gaps = store.plan(key)
        if not gaps:
            return
        covered = key.n_samples - sum(b - a for a, b in gaps)
        if ctx.holders is not None:
            covered += _shard_files(store)
        now = clock()
        if covered > covered_before:
            covered_before, last_progress = covered, now
        elif now - last_progress > timeout:
            raise ClipbenchError(_stall_message(key, split, ctx, batch_size, gaps, timeout))
        sleep(poll)


def _shard_files(store) -> int:
    """Complete shard files in the whole store (cheap: one directory listing per entry)."""
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(store.root):
            with contextlib.suppress(OSError):
                count += sum(name.endswith(".npz") for name in os.listdir(os.path.join(entry.path, "shards")))
    return count


def _stall_message(key, split, ctx: DistContext, batch_size: int, gaps, timeout: float) -> str:
    stalled = []
    for rank in range(ctx.world_size):
        start, end = rank_range(key.n_samples, ctx.world_size, rank, batch_size)
        missing = sum(max(0, min(b, end) - max(a, start)) for a, b in gaps)
        who = f"rank {rank}" if ctx.holders is None else f"rank {ctx.holders[rank]} (piece {rank} of {ctx.world_size})"
        if missing:
            stalled.append(f"{who} ({missing} of its samples [{start}, {end}) missing)")
    who = ", ".join(stalled) or "a peer"
    waiter = ("the scoring step" if ctx.array == "score" else "rank 0" if ctx.holders is None
              else f"rank {ctx.holders[0]}, which scores the job,")
    return (f"distributed run stalled: {who} produced no feature shard for {timeout:g} s while extracting "
            f"{split.dataset_name}/{split.split} features; that rank is hung, dead or never started "
            f"({waiter} waits on its shards; set {ENV_STALL_TIMEOUT} to wait longer)")


def _bind_device(device: str, env: LaunchEnv) -> str:
    """Pin this process to the GPU of its LOCAL_RANK; returns the backend for ``device``."""
    import torch

    dev = torch.device(torch_env.parse_device(device))
    if dev.type != "cuda":
        return "gloo"
    if dev.index is not None:
        raise ClipbenchError(f"--device {device}: under torchrun each process uses the GPU of its LOCAL_RANK; "
                             "pass --device cuda (select GPUs with CUDA_VISIBLE_DEVICES)")
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise ClipbenchError(f"LOCAL_RANK {env.local_rank} has no GPU: this node has {count} visible; "
                             f"use --nproc_per_node {count} or fewer")
    torch.cuda.set_device(env.local_rank)  # "cuda" now means this rank's GPU everywhere, incl. NCCL
    return "nccl"


@contextlib.contextmanager
def session(device: str, array: DistContext | None = None) -> Iterator[DistContext]:
    """Join the process group for the duration of a run (and leave it after); plain runs get rank 0 of 1.

    A group that the caller initialised already (clipbench.run inside the user's own distributed
    program) is used as is and left alone afterwards. ``array`` (``job_array.array_context``) is a
    job-array rank or scoring step: used as is, no group; refused under a multi-process torchrun.
    """
    env = launch_env()
    if array is not None:
        if env is not None and env.world_size > 1:
            raise ClipbenchError("--rank/--world-size/--slurm are for job arrays (independent processes); under "
                                 "torchrun the launcher gives each process its rank")
        yield array
        return
    if env is None or env.world_size == 1:
        yield DistContext()
        return
    import torch.distributed as torch_dist  # only under a launcher: a plain run need not load torch

    backend = _bind_device(device, env)
    owns_group = not torch_dist.is_initialized()
    if owns_group:
        log.info("joining process group: rank %d of %d (local rank %d), backend %s, master %s:%s",
                 env.rank, env.world_size, env.local_rank, backend, env.master_addr, env.master_port)
        torch_dist.init_process_group(backend, init_method="env://", rank=env.rank, world_size=env.world_size,
                                      timeout=_timeout())
    elif torch_dist.get_world_size() != env.world_size or torch_dist.get_rank() != env.rank:
        raise ClipbenchError("the initialised process group does not match RANK/WORLD_SIZE of the environment")
    try:
        yield DistContext(env.rank, env.world_size, env.local_rank, torch_dist.get_backend())
    finally:
        if owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def extract_features_sharded(model, split, store, ctx: DistContext, *, projected: bool = True,
                             precision: str = "fp32", batch_size: int = 256, workers: int = 0,
                             shard_size: int | None = None, progress: bool = True, decode: str = "pil"):
    """Collective ``extract_features``: each rank extracts its batch-aligned range, rank 0 assembles.

    Every rank must call this for the same splits in the same order. Returns the ``FeatureSet`` on
    rank 0 (after waiting for the other ranks' shards, see ``wait_for_shards``), with ``split``'s labels
    attached (shards hold features only), and None elsewhere, at once. Samples already covered by
    complete shards (from any earlier run, whatever its world size) are not recomputed.
    """
    from clipbench.features import extract_features, extract_range, feature_key

    if not ctx.enabled:
        return extract_features(model, split, store, projected=projected, precision=precision, batch_size=batch_size,
                                workers=workers, shard_size=shard_size, progress=progress, decode=decode)
    if len(split) == 0:
        raise ClipbenchError(f"{split.dataset_name}/{split.split} has no samples")
    key = feature_key(model, split, projected, precision, batch_size, decode)
    start, end = rank_range(key.n_samples, ctx.world_size, ctx.rank, batch_size) if ctx.extracts else (0, 0)
    if start < end and not store.is_complete(key):
        _, gaps = store.plan(key)
        for a, b in gaps:
            a, b = max(a, start), min(b, end)
            if a < b:
                extract_range(model, split, store, key, a, b, batch_size=batch_size, workers=workers,
                              shard_size=shard_size, progress=progress, decode=decode)
    if not ctx.is_main:  # done with this split: no collective, nobody waits for this rank
        return None
    wait_for_shards(store, key, split, ctx, batch_size)
    # Every range now has its shards: this assembles them in order and verifies them (a damaged
    # shard is discarded and recomputed here, by rank 0 alone).
    return extract_features(model, split, store, projected=projected, precision=precision, batch_size=batch_size,
                            workers=workers, shard_size=shard_size, progress=progress, decode=decode)


__all__ = ["DEFAULT_STALL_TIMEOUT_S", "DEFAULT_TIMEOUT_S", "ENV_STALL_TIMEOUT", "ENV_TIMEOUT", "DistContext",
           "LaunchEnv", "balanced_ranges", "env_rank", "extract_features_sharded", "is_main_process", "launch_env",
           "rank_range", "session", "stall_timeout", "wait_for_shards"]
