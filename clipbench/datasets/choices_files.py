"""``choices:FILE.jsonl``: choices items the user writes, one JSON object per line.

``{"image": path relative to the file, "positive": str, "negatives": [str, ...], "subset": optional
str, "group": optional str}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from clipbench.datasets.base import SplitData
from clipbench.datasets.choices import DEFAULT_SUBSET, ChoicesAdapter, ChoicesSplit, choices_fields, str_list
from clipbench.datasets.user_data import comma_hint
from clipbench.foundations.errors import DataError


def read_choices_file(file: Path, name: str) -> ChoicesSplit:
    """The items of a ``choices:`` file (one JSON object per line), as one ``test`` split."""
    paths, positives, negatives, subsets, groups = [], [], [], [], []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{file} is not UTF-8 text") from exc
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{file}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where} is not a JSON object ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{where} is not a JSON object")
        image, positive, negs = row.get("image"), row.get("positive"), row.get("negatives")
        if not isinstance(image, str) or not image.strip():
            raise DataError(f'{where}: "image" must be a non-empty path')
        if not isinstance(positive, str) or not positive.strip():
            raise DataError(f'{where}: "positive" must be a non-empty caption')
        if isinstance(negs, str):
            negs = [negs]
        if not str_list(negs) or not negs:
            raise DataError(f'{where}: "negatives" must be a non-empty list of captions')
        subset, group = row.get("subset", DEFAULT_SUBSET), row.get("group")
        if not isinstance(subset, str) or not subset.strip():
            raise DataError(f'{where}: "subset" must be a non-empty string')
        paths.append(image if os.path.isabs(image) else str((file.parent / image).resolve()))
        positives.append(positive.strip())
        negatives.append([n.strip() for n in negs])
        subsets.append(subset.strip())
        groups.append(None if group is None else str(group))
    if not paths:
        raise DataError(f"{file} has no items (expected one JSON object per line: image, positive, negatives)")
    return ChoicesSplit(name, "test", paths, positives, negatives, subsets, groups, root=file.parent)


@dataclass
class ChoicesFileAdapter(ChoicesAdapter):
    """``choices:FILE.jsonl``: relative image paths resolve against the file's folder."""

    path: Path = Path(".")

    @classmethod
    def from_path(cls, path: str | os.PathLike, name: str | None = None) -> ChoicesFileAdapter:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"choices file {file} does not exist (expected a .jsonl of image, positive, negatives)"
                            f"{comma_hint(file)}")
        if file.suffix.lower() != ".jsonl":
            raise DataError(f"choices:{file}: expected a .jsonl file")
        return cls(**choices_fields(name or f"choices:{file}", f"image-caption choices from {file}"), path=file)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.path.is_file()

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        self.check_split(split)
        return read_choices_file(self.path, self.name)
