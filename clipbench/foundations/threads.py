"""Torch's CPU thread count, pinned for a block: float reductions (and so the last digits of a
probe fit) depend on it, so runs record it and can fix it (``clipbench run --threads N``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op threads inside the block (None: leave torch's setting alone)."""
    if threads is None:
        yield
        return
    import torch  # only here: a run that leaves the threads alone need not load torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
