"""How many DataLoader workers feed the image encoder, and how the loader is built (torch-free to import).

``workers: auto`` (the default) resolves per extraction:

* on CUDA: every CPU this process may use (its share under torchrun), at most ``CUDA_WORKERS``:
  one worker decodes and resizes roughly 70-100 images/s (benchmarks/pipeline.py), a GPU encodes
  thousands, so a GPU wants as many workers as the machine has;
* on CPU: one worker per four CPUs (at least one), which overlaps decoding with the encoder
  without taking many cores from its threads (measured on 2 shared cores, ViT-B/32, 64 JPEGs:
  one worker 8.7 s vs inline 9.9 s, medians of 6, see benchmarks/README.md), except for a split of
  at most ``CPU_INLINE_SAMPLES`` images (one default batch), where there is nothing to overlap and
  a worker would only add its start-up.

An explicit count far above the machine (``--workers 999``) is a mistake, not a request.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

AUTO = "auto"

#: Most workers ``auto`` gives one CUDA device.
CUDA_WORKERS = 16
#: On CPU, splits up to this size (one default batch) are decoded in the main process under ``auto``.
CPU_INLINE_SAMPLES = 256


def cpu_share() -> int:
    """CPUs this process may use: its affinity set, divided among torchrun's local processes."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cpus // max(1, local))


def max_workers() -> int:
    """The largest explicit worker count accepted: four per CPU (at least 8)."""
    return max(8, 4 * (os.cpu_count() or 1))


def workers_ok(value: Any) -> bool:
    """The option check: ``"auto"`` or an integer in 0..max_workers()."""
    if value == AUTO:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= max_workers()


def workers_flag(text: str) -> str | int:
    """argparse type of ``--workers``: ``auto`` or an integer (range checked with the option)."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer, got {text!r}") from None


def resolve_workers(value: str | int, device: Any, n_samples: int) -> int:
    """The worker count for one extraction of ``n_samples`` images on ``device`` (a torch.device or str)."""
    if value != AUTO:
        return int(value)
    kind = getattr(device, "type", str(device).split(":", 1)[0])
    share = cpu_share()
    if kind == "cuda":
        return min(share, CUDA_WORKERS)
    if n_samples <= CPU_INLINE_SAMPLES:
        return 0
    return max(1, share // 4)


def loader_options(workers: str | int, device: Any, n_samples: int) -> dict[str, Any]:
    """DataLoader keyword arguments: worker count, pinned memory and prefetching on CUDA.

    Workers are not persistent: extraction reads each loader exactly once, so persistence would
    only keep idle processes alive until the loader is collected.
    """
    count = resolve_workers(workers, device, n_samples)
    cuda = getattr(device, "type", str(device).split(":", 1)[0]) == "cuda"
    options: dict[str, Any] = {"num_workers": count, "pin_memory": cuda, "persistent_workers": False}
    if count > 0:
        options["prefetch_factor"] = 4 if cuda else 2
    return options
