"""Torch's CPU thread count, pinned for a block: float reductions (and so the last digits of a
probe fit) depend on it, so runs record it and can fix it (``clipbench run --threads N``).

A run served from the caches never needs torch, and importing it only to set a thread count costs
more than the rest of such a run. So when torch is not loaded yet the count is applied when torch is
first imported inside the block (an import hook on ``torch``), and the hook is gone when the block
ends: a run that computes nothing imports no torch, and every torch operation of one that does runs
on the requested threads.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
from collections.abc import Iterator
from types import ModuleType


class _SetThreadsOnImport(importlib.abc.MetaPathFinder):
    """Finds ``torch`` through the other finders and sets its thread count once its import completes."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.previous: int | None = None  # torch's own count, once this hook changed it

    def find_spec(self, fullname, path, target=None):
        if fullname != "torch":
            return None
        for finder in sys.meta_path:  # whichever finder would have found torch without this hook
            find = getattr(finder, "find_spec", None)
            spec = None if finder is self or find is None else find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            self.previous = module.get_num_threads()
            module.set_num_threads(self.threads)

        spec.loader.exec_module = exec_module  # this spec's own loader object: nothing shared changes
        return spec


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use ``threads`` intra-op threads inside the block (None: leave torch's setting alone).

    Torch is not imported here: if it is not loaded yet, the count is set when something in the block
    first imports it."""
    if threads is None:
        yield
        return
    torch = sys.modules.get("torch")
    if torch is None:
        hook = _SetThreadsOnImport(threads)
        sys.meta_path.insert(0, hook)
        try:
            yield
        finally:
            if hook in sys.meta_path:
                sys.meta_path.remove(hook)
            if hook.previous is not None:
                sys.modules["torch"].set_num_threads(hook.previous)
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
