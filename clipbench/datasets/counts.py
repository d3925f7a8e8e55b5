"""Expected sample counts: a dataset copy that is not the published one stops the run before any model loads.

An adapter that knows how many images its evaluation split has declares ``expected_count`` (an int,
or 0 when the count is not fixed, e.g. scraped sets whose URLs rot); one that carves its test split out
of a single published set (SUN397, EuroSAT) declares that set's size as ``expected_total``; one whose published
size counts items rather than images (WinoGAViL's cues, each over several candidate images) declares
``expected_items``, compared with the split's ``n_items``. ``check_counts`` loads every such
split once, before the engine loads a model, and turns a mismatch into one ``DataError`` line that
names the dataset, the folder, both counts and what the published count is (a wrong ObjectNet download
or a half-extracted SUN397 is a clear line, not a number that quietly differs from everyone else's).
A deliberate subset (a fake copy in tests, a partial mirror) runs with ``--allow-count-mismatch``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from clipbench.foundations.errors import DataError

log = logging.getLogger(__name__)

#: the engine option that lets a copy of another size through
ALLOW_FLAG = "--allow-count-mismatch"


def expected_count(adapter) -> int:
    """The published size of ``adapter``'s evaluation split, or 0 when it declares none."""
    return int(getattr(adapter, "expected_count", 0) or 0)


def count_error(name: str, split: str, found: int, expected: int, where: Path | str, what: str = "",
                unit: str = "samples") -> DataError:
    """The one-line error for a copy whose evaluation split has ``found`` samples (or ``unit``) instead of ``expected``."""
    about = f" ({what})" if what else ""
    return DataError(f"{name} {split}: {found:,} {unit} under {where}, expected {expected:,}{about}; this copy is "
                     f"partial or another version, so its numbers would not compare with published ones. Get the "
                     f"full copy (clipbench download {name} says how), or pass {ALLOW_FLAG} to score it anyway")


def check_counts(adapters: Sequence, data_root: Path | str) -> None:
    """Load each adapter's evaluation split that declares an expected count and compare; DataError on the first
    mismatch. Runs before any model loads."""
    for adapter in adapters:
        expected, total = expected_count(adapter), int(getattr(adapter, "expected_total", 0) or 0)
        items = int(getattr(adapter, "expected_items", 0) or 0)
        if not expected and not total and not items:
            continue
        split = adapter.evaluation_split
        loaded = adapter.load_split(split, Path(data_root))
        where = Path(data_root) / getattr(adapter, "folder", "")
        if expected and len(loaded) != expected:
            raise count_error(adapter.name, split, len(loaded), expected, where, getattr(adapter, "count_note", ""))
        whole = len(getattr(loaded, "parent", loaded))  # a carved split's parent is the whole set
        if total and whole != total:
            raise count_error(adapter.name, "(whole set)", whole, total, where, "the published set its test split is "
                              "carved from")
        if items and loaded.n_items != items:
            raise count_error(adapter.name, split, loaded.n_items, items, where, getattr(adapter, "count_note", ""),
                              unit="items")
        log.debug("%s %s: %d samples, as published", adapter.name, split, len(loaded))
