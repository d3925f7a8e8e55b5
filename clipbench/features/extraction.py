"""Batched image-feature extraction into the feature store, resumable shard by shard.

``extract_features`` is what the engine calls: it returns cached features when the store has them
(checksums verified), and otherwise extracts only the sample ranges that no complete shard covers,
under a per-entry file lock so two processes never extract the same entry at once. The store keeps
features only; the returned ``FeatureSet`` carries the split's own labels.
``extract_range`` + ``FeatureStore.assemble`` are the pieces a distributed launcher uses: each
rank extracts its own index range, then one process assembles the shards in order.

Test hooks (environment variables, read at call time):

* ``CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES=N``: after the N-th image batch of this process,
  raise ``KeyboardInterrupt`` (or, with ``CLIPBENCH_TEST_INTERRUPT_MODE=kill``, SIGKILL itself).
* ``CLIPBENCH_TEST_FORWARD_LOG=PATH``: append one line per image-encoder forward pass (batch size),
  so a test can count forwards across processes. In-process, ``FORWARD_STATS`` counts them too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from clipbench.datasets.base import SplitData
from clipbench.features.image_pipeline import image_pipeline
from clipbench.features.store import FeatureKey, FeatureSet, FeatureStore, ShardInfo
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.progress import progress_bar
from clipbench.foundations.workers import loader_options
from clipbench.models.base import ImageTextModel

if TYPE_CHECKING:  # torch loads when something is extracted: a cache hit is served without it
    import torch
    from torch.utils.data import DataLoader

log = logging.getLogger(__name__)

ENV_INTERRUPT_AFTER = "CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES"
ENV_INTERRUPT_MODE = "CLIPBENCH_TEST_INTERRUPT_MODE"
ENV_FORWARD_LOG = "CLIPBENCH_TEST_FORWARD_LOG"

#: Default shard length in batches: small enough to lose little on a crash, large enough to stay few files.
SHARD_BATCHES = 16


class NonFiniteFeaturesError(ClipbenchError):
    """The image encoder produced NaN/Inf (e.g. fp16 overflow); such features are never stored or scored."""


@dataclass
class ForwardStats:
    """In-process count of image-encoder forward passes, for tests that prove a cache hit."""

    batches: int = 0
    samples: int = 0
    #: seconds inside the image encoder (synchronised on CUDA): the encoder-only throughput of a record
    encoder_s: float = 0.0

    def reset(self) -> None:
        self.batches = self.samples = 0
        self.encoder_s = 0.0


FORWARD_STATS = ForwardStats()


def feature_key(model: ImageTextModel, split: SplitData, projected: bool = True, precision: str = "fp32",
                batch_size: int = 256, decode: str = "pil") -> FeatureKey:
    """The store key of ``model``'s features of ``split`` extracted in batches of ``batch_size`` on its device,
    with the pixels ``decode`` makes (its preprocess id)."""
    return FeatureKey(
        model_identity=model.identity,
        features="projected" if projected else "pre_projection",
        preprocess_id=image_pipeline(model, decode).preprocess_id,
        dataset=split.dataset_name,
        split=split.split,
        split_fingerprint=split.fingerprint,
        n_samples=len(split),
        precision=precision,
        batch_size=int(batch_size),
        device=model.device_type,
    )


def extraction_provenance(model: ImageTextModel, key: FeatureKey, decode: str = "pil") -> dict:
    """How this process extracts ``key``: stored with every shard, returned as ``FeatureSet.provenance``."""
    import torch

    import clipbench

    device = model.device
    name = None
    if device.type == "cuda":
        with contextlib.suppress(RuntimeError, AssertionError):
            name = torch.cuda.get_device_name(device)
    return {"batch_size": key.batch_size, "precision": key.precision, "device": str(device), "device_name": name,
            "decode": decode, "torch_threads": torch.get_num_threads(), "clipbench": clipbench.__version__,
            "torch": torch.__version__}


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """AMP for fp16/bf16: CUDA autocast (fp16 or bf16), CPU autocast for bf16; fp32 runs as is."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("fp16", "bf16"):
        raise ClipbenchError(f"unknown precision {precision!r}; expected fp32, fp16 or bf16")
    import torch

    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=dtype)
    if precision == "bf16" and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    raise ClipbenchError(f"--precision {precision} needs a CUDA device (got {device}); use fp32 here")


def _interrupt_after() -> int | None:
    value = os.environ.get(ENV_INTERRUPT_AFTER)
    return int(value) if value else None


def _note_forward(n: int) -> None:
    FORWARD_STATS.batches += 1
    FORWARD_STATS.samples += n
    log_path = os.environ.get(ENV_FORWARD_LOG)
    if log_path:
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{n}\n")
    limit = _interrupt_after()
    if limit is not None and FORWARD_STATS.batches >= limit:
        if os.environ.get(ENV_INTERRUPT_MODE, "raise") == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise KeyboardInterrupt(f"test hook: interrupted after {FORWARD_STATS.batches} batches")


def shard_ranges(start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    """[start, end) cut at absolute multiples of ``size``, so reruns produce the same shard boundaries."""
    cursor = start
    while cursor < end:
        stop = min(end, (cursor // size + 1) * size)
        yield cursor, stop
        cursor = stop


def _worker_errors_unwrapped(loader: DataLoader) -> Iterator:
    """Iterate ``loader``; a ``ClipbenchError`` raised in a worker process keeps its one-line message.

    DataLoader re-raises a worker's exception as the same type with the worker's whole traceback as
    the message; the user needs the last line (e.g. which image is corrupt), not the trace.
    """
    iterator = iter(loader)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except ClipbenchError as exc:
            text = str(exc)
            if "DataLoader worker process" not in text.split("\n", 1)[0]:
                raise
            last = [line for line in text.splitlines() if line.strip()][-1]
            prefix = f"{type(exc).__module__}.{type(exc).__qualname__}: "
            raise type(exc)(last[len(prefix):] if last.startswith(prefix) else last) from exc
        yield item


def _batches(ranges: list[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Batches of sample indices that never straddle a shard boundary."""
    out = []
    for a, b in ranges:
        out.extend(list(range(i, min(i + batch_size, b))) for i in range(a, b, batch_size))
    return out


def extract_range(
    model: ImageTextModel,
    split: SplitData,
    store: FeatureStore,
    key: FeatureKey,
    start: int,
    end: int,
    *,
    batch_size: int | None = None,
    workers: int | str = 0,
    shard_size: int | None = None,
    progress: bool = True,
    decode: str = "pil",
) -> list[ShardInfo]:
    """Extract samples [start, end) of ``split`` into shards of ``store``, skipping complete shards.

    Batches are ``key.batch_size`` (the batch size is part of the key; ``batch_size``, if given,
    must agree). Shards are cut at absolute multiples of ``shard_size`` (default ``SHARD_BATCHES *
    batch_size``) and each is written the moment its last batch is done. Existing shards in the
    range are re-hashed first, so a corrupt one is recomputed. Safe to call from several processes
    on disjoint ranges of the same key (no lock is taken here); returns the shards it wrote.
    ``decode`` picks the image pipeline (``features.image_pipeline``); its preprocess id must be the key's.
    """
    if not 0 <= start <= end <= key.n_samples:
        raise ValueError(f"range [{start}, {end}) outside [0, {key.n_samples})")
    batch_size = key.batch_size if batch_size is None else batch_size
    if batch_size < 1:
        raise ClipbenchError(f"batch size must be at least 1, got {batch_size}")
    if batch_size != key.batch_size:
        raise ValueError(f"batch size {batch_size} differs from the key's {key.batch_size}")
    import torch
    from torch.utils.data import DataLoader

    if model.device.type != key.device:
        raise ValueError(f"model on {model.device} but the key is for device type {key.device}")
    pipeline = image_pipeline(model, decode)
    if pipeline.preprocess_id != key.preprocess_id:
        raise ValueError(f"--decode {decode} makes {pipeline.preprocess_id!r} pixels, "
                         f"the key is for {key.preprocess_id!r}")
    shard_size = shard_size or SHARD_BATCHES * batch_size
    _, gaps = store.plan(key, start, end, verify=True)
    ranges = [c for a, b in gaps for c in shard_ranges(a, b, shard_size)]
    if not ranges:
        return []
    device = model.device
    labels_all = np.asarray(split.labels, dtype=np.int64)
    dataset = split.torch_dataset(pipeline.transform_for(split))
    loader = DataLoader(dataset, batch_sampler=_batches(ranges, batch_size), collate_fn=pipeline.collate_fn,
                        **loader_options(workers, device, sum(b - a for a, b in ranges)))
    total = sum(b - a for a, b in ranges)
    provenance = extraction_provenance(model, key, decode)
    about = {"model": model.name, "subset": split.subset_spec}  # what the key's hashes stand for (cache list)
    written: list[ShardInfo] = []
    pending_feats: list[np.ndarray] = []
    range_iter = iter(ranges)
    current = next(range_iter)
    filled = 0
    desc = f"{split.dataset_name}/{split.split} {model.name}"
    with progress_bar(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar, \
            torch.inference_mode(), autocast_context(device, key.precision):
        for images, labels in _worker_errors_unwrapped(loader):
            images = pipeline.to_device(images, device)
            if device.type == "cuda":  # the copy (and a GPU decode) is asynchronous: not the encoder's time
                torch.cuda.synchronize(device)
            encode_start = time.perf_counter()
            feats = model.encode_image(images, projected=key.features == "projected").float()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            FORWARD_STATS.encoder_s += time.perf_counter() - encode_start
            a, b = current[0] + filled, current[0] + filled + len(labels)
            if not torch.isfinite(feats).all():
                raise NonFiniteFeaturesError(
                    f"{model.name} produced NaN/Inf image features for {split.dataset_name}/{split.split} samples "
                    f"[{a}, {b}) at precision {key.precision}; nothing was stored"
                    + (" (try --precision fp32)" if key.precision != "fp32" else " (check the checkpoint's weights)")
                )
            labels = np.asarray(labels, dtype=np.int64)
            # the store keeps no labels, but this still proves the loader yields the split's samples in order
            if not np.array_equal(labels, labels_all[a:b]):
                raise ClipbenchError(f"{split.dataset_name}/{split.split}: the loader's labels for samples [{a}, {b}) "
                                     "differ from the split's label vector (a dataset adapter bug)")
            pending_feats.append(feats.cpu().numpy())
            filled += len(labels)
            bar.update(len(labels))
            if current[0] + filled == current[1]:
                written.append(store.write_shard(key, current[0], current[1], np.concatenate(pending_feats),
                                                 provenance, about))
                pending_feats, filled = [], 0
                current = next(range_iter, None)
            _note_forward(len(labels))
    if current is not None:
        raise RuntimeError(f"extraction of {desc} ended before shard {current} was complete")
    return written


def extract_features(
    model: ImageTextModel,
    split: SplitData,
    store: FeatureStore,
    *,
    projected: bool = True,
    precision: str = "fp32",
    batch_size: int = 256,
    workers: int | str = 0,
    shard_size: int | None = None,
    progress: bool = True,
    decode: str = "pil",
) -> FeatureSet:
    """Features of ``split`` under ``model``: from the store if complete and intact, else extracted.

    A damaged shard (size/checksum mismatch) is logged, discarded and recomputed; complete shards
    from an interrupted run are reused once their SHA-256 is re-checked (also when the manifest is
    gone). Returns float32 features in the split's sample order, with their ``provenance`` and the
    split's labels (the store keeps none; the split fingerprint in the key covers them).
    """
    if len(split) == 0:
        raise ClipbenchError(f"{split.dataset_name}/{split.split} has no samples")
    key = feature_key(model, split, projected, precision, batch_size, decode)
    labels = np.asarray(split.labels, dtype=np.int64)
    cached = store.load_or_fill(key, labels, lambda: extract_range(model, split, store, key, 0, key.n_samples,
                                                                   workers=workers, shard_size=shard_size,
                                                                   progress=progress, decode=decode))
    return _checked(cached, split)


def _checked(features: FeatureSet, split: SplitData) -> FeatureSet:
    if not np.isfinite(features.features).all():
        raise NonFiniteFeaturesError(f"cached features for {split.dataset_name}/{split.split} contain NaN/Inf")
    return features
