"""Seeded, class-stratified splitting: the probe's validation carve and fixed splits of datasets without one.

The carve uses numpy's ``default_rng`` (PCG64, whose streams numpy keeps stable across versions)
so the same seed picks the same samples everywhere; no sklearn version dependence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.foundations.errors import ClipbenchError, DataError


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


def load_split(adapter: DatasetAdapter, split: str, data_root: str | Path | None, *,
               verify_data: bool = False) -> SplitData:
    """``adapter.load_split`` with the fingerprint mode chosen: ``verify_data`` (``--verify-data``)
    hashes every byte of the split's files into its fingerprint instead of a stat manifest."""
    loaded = adapter.load_split(split, Path(data_root) if data_root is not None else None)
    loaded.verify_data = bool(verify_data)
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
    return train.subset(kept, f"probe-train:{spec}"), train.subset(carved, f"probe-val:{spec}"), test
