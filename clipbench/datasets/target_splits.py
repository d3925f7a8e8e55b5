"""File splits that carry targets beside the label vector: multi-label indicators (``SplitData.multilabel``)
and named group variables (``SplitData.sample_groups``), for the sets of ``clipbench.scoring.targets``."""

from __future__ import annotations

import numpy as np

from clipbench.datasets.images import FileSplit


class MultiLabelFileSplit(FileSplit):
    """Image files with a multi-label indicator matrix; the label vector holds each sample's lowest positive
    class."""

    def __init__(self, dataset_name: str, split: str, paths, targets: np.ndarray, root) -> None:
        self._targets = np.asarray(targets, bool)
        super().__init__(dataset_name, split, paths, self._targets.argmax(axis=1), root=root)

    @property
    def multilabel(self) -> np.ndarray:
        return self._targets


class GroupedFileSplit(FileSplit):
    """Image files with labels and named group variables ``{variable: (codes, names)}``."""

    def __init__(self, dataset_name: str, split: str, paths, labels, groups: dict, root) -> None:
        super().__init__(dataset_name, split, paths, labels, root=root)
        self._groups = {k: (np.asarray(codes, np.int64), list(names)) for k, (codes, names) in groups.items()}

    @property
    def sample_groups(self) -> dict[str, tuple[np.ndarray, list[str]]]:
        return self._groups


def codes_of(values: list[str], names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(int64 codes, names) of string values: ``names`` in the given order, else sorted."""
    names = sorted(set(values)) if names is None else list(names)
    index = {n: i for i, n in enumerate(names)}
    return np.asarray([index[v] for v in values], np.int64), names
