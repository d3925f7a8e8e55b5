"""Seeded, class-stratified sampling, the one home for it: the probe's validation carve and fixed
splits of datasets without one (``stratified_indices``), few-shot picks (``per_class_indices``) and
``--limit`` (``limit_indices``).

The carve uses numpy's ``default_rng`` (PCG64, whose streams numpy keeps stable across versions)
so the same seed picks the same samples everywhere; no sklearn version dependence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.foundations.errors import ClipbenchError, DataError

#: ``subset_spec`` prefixes of the linear probe's carve of ``train`` (both parts keep the split name ``train``)
PROBE_TRAIN, PROBE_VAL = "probe-train", "probe-val"


def stratified_indices(
    labels: np.ndarray, fraction: float | None = None, per_class: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, carved) positions: per class, a seeded shuffle, then ``fraction`` (or ``per_class``) carved.

    A class with a single sample stays in ``kept``; with ``fraction`` every class of two or more
    samples gives at least one sample to ``carved`` and keeps at least one. Both outputs are sorted.
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("give exactly one of fraction and per_class")
    if fraction is not None and not 0.0 < fraction < 1.0:
        raise ClipbenchError(f"validation fraction must be between 0 and 1, got {fraction}")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    kept, carved = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(len(members))]
        if per_class is not None:
            n = min(per_class, len(members))
        elif len(members) < 2:
            n = 0
        else:
            n = int(min(max(round(fraction * len(members)), 1), len(members) - 1))
        carved.append(members[:n])
        kept.append(members[n:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(carved))


def per_class_indices(labels: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of exactly ``k`` samples of every class, drawn with ``seed`` (few-shot's pick):
    per class, in label order, ``rng.choice`` of ``k`` members without replacement; a class with fewer
    than ``k`` samples is a ``ClipbenchError``."""
    labels = np.asarray(labels)
    if k < 1:
        raise ClipbenchError(f"fewshot: k must be >= 1, got {k}")
    rng = np.random.default_rng(seed)
    picked = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        if members.size < k:
            raise ClipbenchError(f"fewshot: class {int(cls)} has {members.size} training sample(s), k={k} requested")
        picked.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def limit_indices(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Exactly ``limit`` sorted positions, class-stratified: each class gets its proportional share
    (largest remainder), at least one sample per class when ``limit`` allows, picked by a seeded shuffle."""
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = limit * counts / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    if limit >= len(classes):
        quota = np.maximum(quota, 1)
    quota = np.minimum(quota, counts)
    # hand out the remainder to the largest fractional parts; equal parts (every class of a balanced
    # set, every image of an image-text set, where each image is its own class) in a seeded random
    # order, so that a limit is a random sample and not the first classes in label order
    tiebreak = np.random.default_rng([seed, 1]).permutation(len(classes))
    while quota.sum() < limit:
        room = np.where(quota < counts, exact - quota, -np.inf)
        best = np.flatnonzero(room == room.max())
        quota[best[np.argmin(tiebreak[best])]] += 1
    while quota.sum() > limit:  # the at-least-one rule overshot: take from the most over-served class
        excess = np.where(quota > 1, quota - exact, -np.inf)
        quota[int(np.argmax(excess))] -= 1
    picked = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picked))


def limit_split(split: SplitData, limit: int | None, seed: int = 0) -> SplitData:
    """``--limit``: a seeded class-stratified subset of exactly ``limit`` samples, kept in split order.

    Stratified rather than the first N so that class-sorted datasets keep every class (the probe
    needs each class in its training data); the subset is named in the split's fingerprint.
    """
    if limit is None or limit >= len(split):
        return split
    return split.subset(limit_indices(split.labels, limit, seed), f"limit={limit}:seed={seed}:stratified")


def load_split(adapter: DatasetAdapter, split: str, data_root: str | Path | None, *,
               verify_data: bool = False) -> SplitData:
    """``adapter.load_split`` with the fingerprint mode chosen, the one way for every kind and source:
    ``verify_data`` (``--verify-data``) hashes every byte of the split's files into its fingerprint
    instead of a stat manifest (a split whose adapter always hashes, bundled generated data, stays so)."""
    loaded = adapter.load_split(split, Path(data_root) if data_root is not None else None)
    loaded.verify_data = bool(verify_data) or loaded.verify_data
    return loaded


def probe_splits(
    adapter: DatasetAdapter, data_root: str | Path, val_fraction: float = 0.2, seed: int = 0, *,
    verify_data: bool = False,
) -> tuple[SplitData, SplitData, SplitData]:
    """(train, val, test) for the linear probe's C sweep.

    The dataset's own ``val`` split where it has one; otherwise a class-stratified seeded carve of
    ``train`` (``val_fraction`` of each class), the rest being the probe's train. The carve's seed
    and fraction are recorded in both parts' ``subset_spec`` (and so in their fingerprints).
    ``verify_data``: as for ``load_split``.
    """
    data_root = Path(data_root)
    if "train" not in adapter.splits or "test" not in adapter.splits:
        raise DataError(
            f"{adapter.name} has splits {', '.join(adapter.splits)}; the linear probe needs 'train' and 'test'"
        )
    train = load_split(adapter, "train", data_root, verify_data=verify_data)
    test = load_split(adapter, "test", data_root, verify_data=verify_data)
    if "val" in adapter.splits:
        return train, load_split(adapter, "val", data_root, verify_data=verify_data), test
    kept, carved = stratified_indices(train.labels, fraction=val_fraction, seed=seed)
    if len(carved) == 0:
        raise DataError(f"{adapter.name}: train split is too small to carve a validation split from")
    spec = f"seed={seed}:frac={val_fraction:g}"
    return train.subset(kept, f"{PROBE_TRAIN}:{spec}"), train.subset(carved, f"{PROBE_VAL}:{spec}"), test


def shown_split(split: str, subset_spec: str) -> str:
    """The split a person knows: a probe's val carved out of ``train`` (split name ``train``) is ``val``."""
    return "val" if any(part.startswith(f"{PROBE_VAL}:") for part in subset_spec.split("|")) else split
