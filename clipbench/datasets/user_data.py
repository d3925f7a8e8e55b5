"""What the sources the user points at share: column picking, split names, and the ``classnames.txt``
and ``prompts.yaml`` that may sit beside the data (``folder:``, ``csv:``, ``hf:``, ``wds:``, ``pairs:``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clipbench.datasets.base import DatasetAdapter
from clipbench.datasets.prompts import load_prompt_file, with_prompts
from clipbench.foundations.errors import DataError

DEFAULT_TEMPLATES = ["a photo of a {c}."]
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test", "testing": "test"}
SPLIT_ORDER = ("train", "val", "test")


def split_name(name: str) -> str:
    """The clipbench name of a split folder or column value (``validation`` -> ``val``)."""
    return SPLIT_ALIASES.get(name.lower(), name)


def ordered_splits(names) -> tuple[str, ...]:
    """train, val, test first (those present), then any other split names in the order given."""
    names = list(names)
    return tuple(s for s in SPLIT_ORDER if s in names) + tuple(s for s in names if s not in SPLIT_ORDER)


def pick_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str,
                where: str | Path) -> str:
    """``wanted`` if given (it must exist), else the first of ``candidates`` among ``columns`` (any case)."""
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{where}: no column {wanted!r} for the {what} (columns: {', '.join(columns)})")
        return wanted
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    raise DataError(f"{where}: no {what} column (expected one of {', '.join(candidates)}; "
                    f"columns: {', '.join(columns)})")


def read_classnames_file(folder: Path) -> list[str] | None:
    """``folder/classnames.txt``: one classname per line, in label order; None when absent."""
    path = folder / "classnames.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path} is empty (expected one classname per line, in label order)")
    return names


def apply_prompt_file(adapter: DatasetAdapter, folder: Path) -> DatasetAdapter:
    """The adapter with the ``prompts.yaml`` (``.yml``, ``.json``) beside its data applied, if there is one."""
    for candidate in ("prompts.yaml", "prompts.yml", "prompts.json"):
        if (folder / candidate).is_file():
            return with_prompts(adapter, load_prompt_file(folder / candidate))
    return adapter


def require_classes(classes: list[str], spec: str, what: str) -> None:
    """Classification needs two classes or more: with one, every image is "correct" and scores 100%."""
    if len(classes) < 2:
        found = f"1 {what} ({classes[0]})" if classes else f"no {what}"
        raise DataError(f"{spec} has {found}; classification needs at least 2 classes "
                        f"(with one, every image would score 100%)")
