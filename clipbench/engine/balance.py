"""The cost-balanced plan of ``--shard-jobs``: (model, dataset) jobs, big ones cut into pieces, dealt to ranks.

A job's cost is the images it encodes times its model's image-tower GFLOPs (``models.registry``:
``ViT-B/16`` 35.1, ``ViT-L/14`` 162; a model the registry cannot name counts as the mean of the
known ones, or 1 if none is known). The fair share of a rank is ``total / world``; a job costing
more is cut into ``ceil(cost / share)`` pieces (at most ``world``), piece ``i`` of ``k`` being
``distributed.rank_range(n, k, i, batch)`` of each of its splits, the exact batch-aligned ranges a
``k``-process torchrun extracts, so the features are the same numbers. The pieces and whole jobs
are dealt by the LPT rule (largest first, each to the least-loaded rank, ties to the lower rank
and then the earlier job), which every rank computes identically from the same inputs: no
collective is needed, under torchrun or in a job array. LPT ends within 4/3 of the best possible
makespan (Graham 1969).

Each rank runs its units in three phases: pieces that do not score (they never wait), whole jobs,
then the first pieces of cut jobs, which wait for their other pieces' shards and score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from clipbench.engine.distributed import DistContext


@dataclass(frozen=True)
class Unit:
    """Piece ``piece`` of ``pieces`` of job ``job`` (``pieces == 1``: the whole job), at ``cost``."""

    job: int
    piece: int
    pieces: int
    cost: float

    @property
    def phase(self) -> int:
        """0: a piece that only extracts; 1: a whole job; 2: the piece that waits for the others and scores."""
        return 0 if self.piece > 0 else 1 if self.pieces == 1 else 2


def balanced_plan(costs: Sequence[float], world_size: int) -> list[list[Unit]]:
    """Per rank, its units in run order (see the module docstring); deterministic."""
    if world_size < 1:
        raise ValueError(f"world size must be positive, got {world_size}")
    if any(not c >= 0 or math.isinf(c) for c in costs):
        raise ValueError(f"job costs must be finite and non-negative, got {list(costs)}")
    total = float(sum(costs))
    share = total / world_size
    units = []
    for job, cost in enumerate(costs):
        pieces = 1 if share <= 0 else min(world_size, max(1, math.ceil(cost / share - 1e-9)))
        units += [Unit(job, i, pieces, cost / pieces) for i in range(pieces)]
    loads, plan = [0.0] * world_size, [[] for _ in range(world_size)]
    for unit in sorted(units, key=lambda u: (-u.cost, u.job, u.piece)):
        rank = min(range(world_size), key=lambda r: (loads[r], r))
        plan[rank].append(unit)
        loads[rank] += unit.cost
    for units_of_rank in plan:
        units_of_rank.sort(key=lambda u: (u.phase, u.job, u.piece))
    return plan


def holders(plan: list[list[Unit]]) -> dict[int, tuple[int, ...]]:
    """Job -> the rank holding each of its pieces, in piece order."""
    where: dict[int, dict[int, int]] = {}
    for rank, units in enumerate(plan):
        for u in units:
            where.setdefault(u.job, {})[u.piece] = rank
    return {job: tuple(pieces[i] for i in sorted(pieces)) for job, pieces in where.items()}


def model_gflops(specs: Sequence) -> list[float]:
    """Image-tower GFLOPs per model spec from the registry; unknown ones get the known mean (or 1)."""
    from clipbench.engine.model_facts import _registered

    known = []
    for spec in specs:
        name = spec if isinstance(spec, str) else getattr(spec, "name", None)
        info = _registered(name) if isinstance(name, str) else None
        known.append(getattr(info, "image_gflops", None) or None)
    values = [g for g in known if g]
    fallback = sum(values) / len(values) if values else 1.0
    return [g or fallback for g in known]


def job_costs(models: Sequence, adapters: Sequence, data_root, options) -> list[float]:
    """Cost of each (model, dataset) job, model-major like the runner's jobs: the evaluation split's images
    (its published count where the adapter declares one, else the split's length; after ``--limit``) times
    the model's GFLOPs. Training splits (the probes') are not counted."""
    from clipbench.datasets.counts import expected_count
    from clipbench.datasets.splits import load_split

    images = []
    for adapter in adapters:
        n = expected_count(adapter) or len(load_split(adapter, adapter.evaluation_split, data_root))
        images.append(min(n, options.limit) if options.limit else n)
    return [g * n for g in model_gflops(models) for n in images]


def unit_context(unit: Unit, plan: list[list[Unit]]) -> DistContext:
    """How ``unit`` extracts: a whole job alone; a piece as rank ``piece`` of ``pieces`` (its first piece
    waits for the others' shards and scores; the stall message names the ranks holding them)."""
    if unit.pieces == 1:
        return DistContext()
    return DistContext(unit.piece, unit.pieces, holders=holders(plan)[unit.job])


def rank_units(costs: Sequence[float], ctx: DistContext) -> list[tuple[Unit, DistContext]]:
    """This rank's units of the plan over ``costs``, each with its extraction context."""
    plan = balanced_plan(costs, ctx.world_size)
    return [(u, unit_context(u, plan)) for u in plan[ctx.rank]]


__all__ = ["Unit", "balanced_plan", "holders", "job_costs", "model_gflops", "rank_units", "unit_context"]
