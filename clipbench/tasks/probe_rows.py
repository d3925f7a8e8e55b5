"""Row blocks for the probe's objective: the features and every n x k array held as blocks of rows.

Why: at ImageNet's shape (1,281,167 x 768 features, 1,000 classes) one float64 n x k array is 10 GB.
The Newton solver keeps several (the scores, a line's direction, the softmax, a line-search trial, the
float32 softmax for CG) beside its features in float64 and float32 (and squared, for the Jacobi
preconditioner only): about 58 GB (54 GiB) in all, plus
the transients of one evaluation if it ran over every row at once. Everything the solver needs from
the rows is a sum over them (the loss, the gradient X^T R, Hessian-vector products X^T U, the
preconditioner, the Hessian), so it is computed block by block, and only d x k and k-sized arrays
cross blocks. The optimum is the same; only the order of float summation changes (a problem held as
one block computes exactly what it did before blocks existed).

``plan_rows`` chooses two things, both recorded in the solver's ``method``:

* the rows per block: bounds one block's transient arrays to ``TRANSIENT_BYTES``; a problem that
  small is one block.
* where the blocks live: on the compute device when the solver's whole state fits in
  ``MEMORY_FRACTION`` of the device's free memory, else in pinned host memory, each block copied to
  the device when it is used ("host"). That is slower (every Hessian-vector product moves the float32
  features and softmax across the bus) but fits any problem the host's memory holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: one block's transient arrays (about six float64 block x k arrays in an evaluation) stay under this
TRANSIENT_BYTES = 512 * 2**20
#: the solver's state is kept on the device only if it fits in this share of the free device memory
MEMORY_FRACTION = 0.8
#: per row and class: scores, line direction, softmax and a line-search trial (float64), softmax (float32)
STATE_BYTES_PER_SCORE = 4 * 8 + 4
#: per row and feature: centred features in float64 and their float32 copy ...
STATE_BYTES_PER_FEATURE = 8 + 4
#: ... and float32 squares, which only the Jacobi preconditioner keeps
SQUARE_BYTES_PER_FEATURE = 4
STORAGES = ("device", "host")


def state_bytes(n: int, dim: int, rows: int, squares: bool = False) -> int:
    """Bytes of the Newton solver's row state for n rows, ``dim`` features and ``rows`` score columns
    (``squares``: with the Jacobi preconditioner's squared features)."""
    per_feature = STATE_BYTES_PER_FEATURE + SQUARE_BYTES_PER_FEATURE * squares
    return n * (dim * per_feature + rows * STATE_BYTES_PER_SCORE)


def default_block_rows(n: int, rows: int) -> int:
    return max(1, min(n, max(1024, TRANSIENT_BYTES // (6 * 8 * max(rows, 1)))))


@dataclass(frozen=True)
class RowPlan:
    """How the objective holds its rows: ``block_rows`` per block, stored on ``storage``, computed on
    ``device``."""

    block_rows: int
    storage: torch.device
    device: torch.device
    #: blocks are copied to the device when used (``storage="host"``; on the CPU a copy in the same memory,
    #: which lets tests run this path without a GPU)
    streams: bool = False

    def describe(self, n: int) -> str:
        blocks = math.ceil(n / self.block_rows)
        where = "host memory, copied to the device per block" if self.streams else str(self.device)
        return f"{blocks} row block{'s' * (blocks != 1)} of <= {self.block_rows} on {where}"


def free_device_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    raise ValueError(f"no free-memory query for device {device}")


def plan_rows(n: int, dim: int, rows: int, device: str | torch.device, *, block_rows: int | None = None,
              storage: str | None = None, free_bytes: int | None = None, squares: bool = False) -> RowPlan:
    """The row blocks for a problem of n x ``dim`` features and ``rows`` score columns on ``device``.

    ``block_rows`` / ``storage`` ("device" or "host") override the choice; ``free_bytes`` stands in for
    the device's free memory (tests); ``squares``: the state includes squared features (Jacobi). On the
    CPU the default is "device": host and device are the same memory."""
    device = torch.device(device)
    if block_rows is not None and block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    if storage is not None and storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    block = min(n, block_rows) if block_rows is not None else default_block_rows(n, rows)
    if storage is None and device.type == "cpu":
        storage = "device"
    if storage is None:
        free = free_device_memory(device) if free_bytes is None else free_bytes
        transient = 6 * 8 * rows * block + 4 * dim * block
        storage = "device" if state_bytes(n, dim, rows, squares) + transient <= MEMORY_FRACTION * free else "host"
    if storage == "device":
        return RowPlan(block, device, device)
    return RowPlan(block, torch.device("cpu"), device, streams=True)


class RowBlocks:
    """An n x m array as a list of row blocks on the plan's storage; arithmetic works block by block.

    Scores, softmax and line directions of the solver are RowBlocks, so the solver's line updates
    (``raw + step * direction``) read as they would on one tensor."""

    __slots__ = ("blocks",)

    def __init__(self, blocks: list[torch.Tensor]):
        self.blocks = blocks

    def __add__(self, other: RowBlocks) -> RowBlocks:
        return RowBlocks([a + b for a, b in zip(self.blocks, other.blocks, strict=True)])

    def __sub__(self, other: RowBlocks) -> RowBlocks:
        return RowBlocks([a - b for a, b in zip(self.blocks, other.blocks, strict=True)])

    def __mul__(self, scale: float) -> RowBlocks:
        return RowBlocks([scale * a for a in self.blocks])

    __rmul__ = __mul__

    def float(self) -> RowBlocks:
        return RowBlocks([a.float() for a in self.blocks])
