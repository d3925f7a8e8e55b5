"""Job-array mode: the sharded extraction of ``clipbench.engine.distributed`` without a process group.

A SLURM job array (or ``srun --ntasks N``, or any scheduler, given ``--rank/--world-size``) starts
``W`` independent processes that never talk to each other. Rank ``r`` extracts exactly the
batch-aligned range of every split that rank ``r`` extracts under ``torchrun`` with ``W``
processes (``distributed.rank_range``), writes it into the shared feature store and exits without
scoring. One final step, on any node, is the same command with ``--world-size W`` and no rank: it
extracts nothing, waits for the ``W`` ranks' shards (``distributed.wait_for_shards``: a rank that
never comes is named after ``CLIPBENCH_DIST_STALL_TIMEOUT`` seconds without progress), assembles
them and scores. With ``--shard-jobs`` each rank instead runs its share of the (model, dataset)
jobs end to end and writes its own records; there is no final step.

Where the rank comes from (``--slurm``):

* in a job array, ``SLURM_ARRAY_TASK_ID``: rank = (id - ``SLURM_ARRAY_TASK_MIN``) /
  ``SLURM_ARRAY_TASK_STEP``, world size = ``SLURM_ARRAY_TASK_COUNT`` (``--array=1-8``, ``--array=0-14:2``
  work; a list such as ``--array=1,4,5`` has no rank order and is refused). With ``--world-size W``
  given too, the array index itself is the rank, so ``sbatch --array=3`` reruns rank 3 alone;
* otherwise under ``srun``, ``SLURM_PROCID`` of ``SLURM_NTASKS``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from clipbench.engine.distributed import DistContext
from clipbench.foundations.errors import ClipbenchError

ARRAY_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP", "SLURM_ARRAY_TASK_COUNT")


def _int(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ClipbenchError(f"--slurm: {name} is not set (run inside a SLURM job array or an srun step)")
        return default
    try:
        return int(value)
    except ValueError:
        raise ClipbenchError(f"--slurm: {name}={value!r} is not an integer") from None


def slurm_rank(environ: Mapping[str, str] | None = None, world_size: int | None = None) -> tuple[int, int]:
    """(rank, world size) of this SLURM array task or srun task (see the module docstring)."""
    environ = os.environ if environ is None else environ
    if environ.get("SLURM_ARRAY_TASK_ID"):
        task = _int(environ, "SLURM_ARRAY_TASK_ID")
        if world_size is not None:  # pinned world: the index is the rank (reruns of one index keep their rank)
            if not 0 <= task < world_size:
                raise ClipbenchError(f"--slurm --world-size {world_size}: array index {task} is not a rank from 0 "
                                     f"to {world_size - 1} (with --world-size the index is the rank: "
                                     f"--array=0-{world_size - 1})")
            return task, world_size
        low, step = _int(environ, "SLURM_ARRAY_TASK_MIN"), _int(environ, "SLURM_ARRAY_TASK_STEP", 1)
        count = _int(environ, "SLURM_ARRAY_TASK_COUNT")
        high = _int(environ, "SLURM_ARRAY_TASK_MAX", low + (count - 1) * step)
        if step < 1 or count < 1 or high != low + (count - 1) * step or (task - low) % step or not low <= task <= high:
            raise ClipbenchError(f"--slurm: array index {task} of {count} task(s) from {low} to {high} step {step} "
                                 "is not an evenly spaced range; use --array=0-N[:step], or give --rank/--world-size")
        return (task - low) // step, count
    if environ.get("SLURM_PROCID") is not None and environ.get("SLURM_NTASKS") is not None:
        rank, world = _int(environ, "SLURM_PROCID"), _int(environ, "SLURM_NTASKS")
        if world_size is not None and world_size != world:
            raise ClipbenchError(f"--slurm --world-size {world_size}: this srun step has SLURM_NTASKS={world}")
        if not 0 <= rank < world:
            raise ClipbenchError(f"--slurm: SLURM_PROCID={rank} is not below SLURM_NTASKS={world}")
        return rank, world
    raise ClipbenchError("--slurm: neither SLURM_ARRAY_TASK_ID nor SLURM_PROCID/SLURM_NTASKS is set (not inside "
                         "a SLURM job array or srun step); give --rank and --world-size instead")


def array_context(rank: int | None, world_size: int | None) -> DistContext | None:
    """The ``DistContext`` of a job-array rank (``rank`` given) or of the final scoring step (only
    ``world_size``); None for a run that is neither."""
    if rank is None and world_size is None:
        return None
    if world_size is None:
        raise ClipbenchError(f"--rank {rank} needs --world-size: the number of ranks of the job array")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ClipbenchError(f"--world-size must be a positive integer, got {world_size!r}")
    if rank is None:
        return DistContext(0, world_size, array="score")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise ClipbenchError(f"--rank {rank!r} is not a rank from 0 to {world_size - 1} (--world-size {world_size})")
    return DistContext(rank, world_size, array="rank")


def rank_note(ctx: DistContext, features_dir) -> str:
    """What an extraction-only job-array rank prints instead of a results table."""
    return (f"job-array rank {ctx.rank} of {ctx.world_size}: its share of every split is in {features_dir}; once "
            f"every rank is done, score with the same command and --world-size {ctx.world_size} (no --rank)")


__all__ = ["ARRAY_VARS", "array_context", "rank_note", "slurm_rank"]
