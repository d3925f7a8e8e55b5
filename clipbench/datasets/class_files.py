"""Classification sets in files the user points at: ``folder:PATH`` and ``csv:PATH`` (``hf:`` is in ``hf``).

* ``folder:PATH``: one sub-folder per class (``PATH/<class>/*.jpg``, one split called ``test``), or
  split folders of class folders (``PATH/train/<class>/``, ``PATH/val/``, ``PATH/test/``); split
  folders beside other folders are an error (is ``test/`` a class?), not a guess.
* ``csv:PATH``: one row per image with an image-path column and a label column (and optionally a
  ``split`` column); relative paths are resolved against the CSV's folder. UTF-8 with or without a
  BOM; one image under two labels is an error; integer labels with gaps warn about the empty classes.

Every kind needs two classes or more: a one-class classifier scores 100% whatever the model does.

Classnames: ``classnames.txt`` beside the data (one name per line) when present, else the folder
names / CSV labels (sorted) / ``ClassLabel`` names. A ``prompts.yaml`` (or ``.json``) beside the data
may give ``classnames`` and ``templates``; the default template is CLIP's ``"a photo of a {c}."``.
For ``folder:``, names that are the class folders' names map by name in any order; names that are no
folder's are display names in sorted-folder order; a mix that contradicts that order is an error
(``user_data.order_by_name``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from clipbench.datasets.base import ClassificationAdapter, DatasetAdapter, SplitData
from clipbench.datasets.images import FileSplit, images_in, is_image_file, list_class_folders
from clipbench.datasets.user_data import (
    DEFAULT_TEMPLATES,
    SPLIT_ALIASES,
    apply_prompt_file,
    comma_hint,
    order_by_name,
    ordered_splits,
    pick_column,
    read_classnames_file,
    read_csv,
    require_classes,
    split_name,
)
from clipbench.foundations.errors import DataError

log = logging.getLogger(__name__)

IMAGE_COLUMNS = ("image", "img", "image_path", "path", "filepath", "file", "filename")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category", "fine_label")


def _names(folders: list[Path]) -> str:
    shown = ", ".join(f"{p.name}/" for p in folders[:5])
    return shown + (f" and {len(folders) - 5} more" if len(folders) > 5 else "")


# ----------------------------------------------------------------------------------------- folder:


def _folder_layout(root: Path, spec: str) -> tuple[dict[str, Path], list[str]]:
    """(clipbench split -> folder of class folders, class folder names) for a ``folder:`` root.

    Split folders (``train/``, ``val/``, ``test/`` and their aliases) are used as splits when they
    are all the root holds; beside other folders the layout is ambiguous (is ``test/`` a class?), so
    it is an error that says what was found rather than a silent guess.
    """
    subdirs = list_class_folders(root, spec)
    split_like = [p for p in subdirs if p.name.lower() in SPLIT_ALIASES]
    others = [p for p in subdirs if p.name.lower() not in SPLIT_ALIASES]
    if not split_like:
        classes = [p.name for p in subdirs]
        require_classes(classes, spec, "class folder")
        log.info("%s: %d class folders (%s), one split 'test'", spec, len(classes), _names(subdirs))
        return {"test": root}, classes
    inner = {p: [c for c in p.iterdir() if c.is_dir() and not c.name.startswith(".")] for p in split_like}
    if others:
        holding = [p for p in split_like if inner[p]]
        what = (f"split folders {_names(split_like)} holding class folders" if holding
                else f"folders named like splits ({_names(split_like)})")
        raise DataError(
            f"{spec}: mixed layout: {what} beside other folders {_names(others)}; expected either only split "
            f"folders (train/, val/, test/, each with one sub-folder per class) or only class folders"
        )
    for p in split_like:
        if not inner[p]:
            raise DataError(f"{spec}: split folder {p} has no class sub-folders "
                            f"(expected {p.name}/<class>/<image>, one sub-folder per class)")
    split_dirs: dict[str, Path] = {}
    order = ("train", "val", "test")
    for p in sorted(split_like, key=lambda p: order.index(split_name(p.name))):
        split = split_name(p.name)
        if split in split_dirs:
            raise DataError(f"{spec}: both {split_dirs[split].name}/ and {p.name}/ are the {split!r} split; keep one")
        split_dirs[split] = p
    per_split = {s: {c.name for c in inner[p]} for s, p in split_dirs.items()}
    classes = sorted(set().union(*per_split.values()))
    require_classes(classes, spec, "class folder")
    log.info("%s: split folders %s; %d classes across them", spec,
             ", ".join(f"{p.name}/ ({len(per_split[s])} class folders) as {s!r}" for s, p in split_dirs.items()),
             len(classes))
    for s, names in per_split.items():
        if len(names) < len(classes):
            missing = sorted(set(classes) - names)
            log.warning("%s: split %r has no folder for %d of the %d classes (%s)", spec, s, len(missing),
                        len(classes), ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
    return split_dirs, classes



@dataclass
class FolderAdapter(ClassificationAdapter):
    """Class folders (optionally inside split folders); built by ``FolderAdapter.from_path``."""

    path: Path = Path(".")
    #: clipbench split -> folder holding that split's class folders
    split_dirs: dict[str, Path] = field(default_factory=dict)
    class_dirs: list[str] = field(default_factory=list)

    @classmethod
    def from_path(cls, path: str | os.PathLike, name: str | None = None) -> DatasetAdapter:
        spec = name or f"folder:{path}"
        if not str(path).strip():
            raise DataError("folder: needs a path: folder:PATH, a folder with one sub-folder of images per class")
        root = Path(path).expanduser()
        if root.is_file():
            hint = f"; for a CSV file use csv:{path}" if root.suffix.lower() == ".csv" else ""
            raise DataError(f"{spec}: {root} is a file, not a folder (expected a folder with one sub-folder per class{hint})")
        if not root.is_dir():
            raise DataError(f"dataset folder {root} does not exist (expected one sub-folder per class){comma_hint(root)}")
        split_dirs, classes = _folder_layout(root, spec)
        display = read_classnames_file(root)
        if display is not None:
            order = order_by_name([[n] for n in display], classes, root / "classnames.txt")
            display = [display[i] for i in order]
        adapter = cls(
            name=spec, classnames=display or [c.replace("_", " ") for c in classes],
            templates=list(DEFAULT_TEMPLATES), splits=ordered_splits(split_dirs),
            path=root, split_dirs=split_dirs, class_dirs=classes,
        )
        return apply_prompt_file(adapter, root, keys=classes)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.path.is_dir()

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        if split not in self.split_dirs:
            raise DataError(f"{self.name} has no split {split!r} (expected one of: {', '.join(self.splits)})")
        root = self.split_dirs[split]
        paths, labels = [], []
        for folder in list_class_folders(root, self.name):
            if folder.name not in self.class_dirs:
                raise DataError(f"{self.name}: {folder} is not one of the {len(self.class_dirs)} known class folders")
            files = images_in(folder)
            paths += files
            labels += [self.class_dirs.index(folder.name)] * len(files)
        if not paths:
            raise DataError(f"{self.name}: no images under {root} (expected image files in its class folders)")
        return FileSplit(self.name, split, paths, labels, root=self.path)


# -------------------------------------------------------------------------------------------- csv:


@dataclass
class CSVAdapter(ClassificationAdapter):
    """Rows of (image path, label[, split]); built by ``CSVAdapter.from_path``."""

    path: Path = Path(".")
    rows: dict[str, tuple[list[Path], list[int]]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_path(
        cls, path: str | os.PathLike, name: str | None = None,
        image_column: str | None = None, label_column: str | None = None, split_column: str | None = "split",
    ) -> DatasetAdapter:
        spec = name or f"csv:{path}"
        if not str(path).strip():
            raise DataError("csv: needs a path: csv:PATH, a CSV file with an image path column and a label column")
        csv_path = Path(path).expanduser()
        if csv_path.is_dir():
            raise DataError(f"{spec}: {csv_path} is a folder, not a CSV file (for class folders use folder:{path})")
        columns, records = read_csv(csv_path)
        if not records:
            raise DataError(f"CSV {csv_path} has no rows (expected one row per image with path and label columns)")
        image_col = pick_column(columns, image_column, IMAGE_COLUMNS, "image path", csv_path)
        label_col = pick_column(columns, label_column, LABEL_COLUMNS, "label", csv_path)
        has_split = split_column is not None and split_column in columns
        declared = read_classnames_file(csv_path.parent)
        raw_labels = [(r.get(label_col) or "").strip() for r in records]
        integer_classes = declared is None and all(lab.lstrip("-").isdigit() for lab in raw_labels)
        if declared is not None:
            classes = declared
        elif integer_classes:
            classes = [str(i) for i in range(max(int(lab) for lab in raw_labels) + 1)]
        else:
            classes = sorted(set(raw_labels))
        index = {c: i for i, c in enumerate(classes)}
        rows: dict[str, tuple[list[Path], list[int]]] = {}
        seen: dict[str, tuple[int, str]] = {}  # image path -> (first line, its label)
        for line, (record, label) in enumerate(zip(records, raw_labels, strict=True), start=2):
            if label in index:
                value = index[label]
            elif label.isdigit() and declared is not None and int(label) < len(classes):
                value = int(label)
            else:
                raise DataError(
                    f"{csv_path} line {line}: unknown label {label!r} (expected one of the {len(classes)} classes"
                    f"{' in ' + str(csv_path.parent / 'classnames.txt') if declared is not None else ''})"
                )
            image = (record.get(image_col) or "").strip()
            if not image:
                raise DataError(f"{csv_path} line {line}: empty image path in column {image_col!r}")
            image_path = Path(image).expanduser()
            if not image_path.is_absolute():
                image_path = csv_path.parent / image_path
            key = os.path.normpath(image_path)
            first = seen.setdefault(key, (line, label))
            if first[1] != label:
                raise DataError(f"{csv_path} line {line}: {image} is labelled {label!r} but line {first[0]} labels "
                                f"it {first[1]!r}; an image has one label")
            split = split_name((record.get(split_column) or "").strip()) if has_split else "test"
            paths, labels = rows.setdefault(split or "test", ([], []))
            paths.append(image_path)
            labels.append(value)
        require_classes(classes, spec, "class")
        if integer_classes:
            used = {int(lab) for lab in raw_labels}
            empty = [c for c in range(len(classes)) if c not in used]
            if empty:
                shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
                log.warning("%s: integer labels make %d classes (0..%d), %d of them without rows (%s); zero-shot "
                            "still scores all %d. Name the classes in %s (one per line, in label order) to say so",
                            spec, len(classes), len(classes) - 1, len(empty), shown, len(classes),
                            csv_path.parent / "classnames.txt")
        adapter = cls(
            name=spec, classnames=classes, templates=list(DEFAULT_TEMPLATES),
            splits=ordered_splits(rows),
            path=csv_path, rows=rows,
        )
        return apply_prompt_file(adapter, csv_path.parent)

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.path.is_file()

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        if split not in self.rows:
            raise DataError(f"{self.name} has no split {split!r} (expected one of: {', '.join(self.splits)})")
        paths, labels = self.rows[split]
        for p in paths:
            if not p.is_file():
                raise DataError(f"{self.path}: image file {p} does not exist (expected a readable image)")
            if not is_image_file(p):
                raise DataError(f"{self.path}: {p} is not an image file (expected one of the usual image extensions)")
        return FileSplit(self.name, split, paths, labels, root=self.path.parent)
