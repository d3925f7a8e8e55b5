"""Datasets the user brings: ``folder:PATH``, ``csv:PATH`` and ``hf:NAME_OR_PATH``.

* ``folder:PATH``: one sub-folder per class (``PATH/<class>/*.jpg``, one split called ``test``), or
  split folders of class folders (``PATH/train/<class>/``, ``PATH/val/``, ``PATH/test/``); split
  folders beside other folders are an error (is ``test/`` a class?), not a guess.
* ``csv:PATH``: one row per image with an image-path column and a label column (and optionally a
  ``split`` column); relative paths are resolved against the CSV's folder. UTF-8 with or without a
  BOM; one image under two labels is an error; integer labels with gaps warn about the empty classes.

Every kind needs two classes or more: a one-class classifier scores 100% whatever the model does.
* ``hf:NAME_OR_PATH``: a Hugging Face ``datasets`` dataset; a local folder written by
  ``save_to_disk`` is read with ``load_from_disk`` (offline), anything else with ``load_dataset``.

Classnames: ``classnames.txt`` beside the data (one name per line, in label order) when present,
else the folder names / CSV labels (sorted) / ``ClassLabel`` names. A ``prompts.yaml`` (or
``.json``) beside the data may give ``classnames`` and ``templates``; the default template is
CLIP's ``"a photo of a {c}."``.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clipbench.datasets.base import DatasetAdapter, SplitData
from clipbench.datasets.images import FileSplit, WrappedSplit, images_in, is_image_file, list_class_folders
from clipbench.datasets.prompts import load_prompt_file, with_prompts
from clipbench.foundations.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES = ["a photo of a {c}."]
SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "dev": "val", "test": "test", "testing": "test"}
IMAGE_COLUMNS = ("image", "img", "image_path", "path", "filepath", "file", "filename")
LABEL_COLUMNS = ("label", "labels", "class", "target", "category", "fine_label")


def _read_classnames_file(folder: Path) -> list[str] | None:
    path = folder / "classnames.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path} is empty (expected one classname per line, in label order)")
    return names


def _apply_prompt_file(adapter: DatasetAdapter, folder: Path) -> DatasetAdapter:
    for candidate in ("prompts.yaml", "prompts.yml", "prompts.json"):
        if (folder / candidate).is_file():
            return with_prompts(adapter, load_prompt_file(folder / candidate))
    return adapter


def _split_name(name: str) -> str:
    return SPLIT_ALIASES.get(name.lower(), name)


def require_classes(classes: list[str], spec: str, what: str) -> None:
    """Classification needs two classes or more: with one, every image is "correct" and scores 100%."""
    if len(classes) < 2:
        found = f"1 {what} ({classes[0]})" if classes else f"no {what}"
        raise DataError(f"{spec} has {found}; classification needs at least 2 classes "
                        f"(with one, every image would score 100%)")


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
    for p in sorted(split_like, key=lambda p: order.index(_split_name(p.name))):
        split = _split_name(p.name)
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
class FolderAdapter(DatasetAdapter):
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
            raise DataError(f"dataset folder {root} does not exist (expected one sub-folder per class)")
        split_dirs, classes = _folder_layout(root, spec)
        display = _read_classnames_file(root)
        if display is not None and len(display) != len(classes):
            raise DataError(f"{root / 'classnames.txt'} has {len(display)} names, expected {len(classes)} (one per class folder)")
        adapter = cls(
            name=spec, classnames=display or [c.replace("_", " ") for c in classes],
            templates=list(DEFAULT_TEMPLATES), splits=tuple(s for s in ("train", "val", "test") if s in split_dirs)
            + tuple(s for s in split_dirs if s not in ("train", "val", "test")),
            path=root, split_dirs=split_dirs, class_dirs=classes,
        )
        return _apply_prompt_file(adapter, root)

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


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{path}: no column {wanted!r} for the {what} (columns: {', '.join(columns)})")
        return wanted
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in lower:
            return lower[cand]
    raise DataError(f"{path}: no {what} column (expected one of {', '.join(candidates)}; columns: {', '.join(columns)})")


def _check_delimiter(columns: list[str], path: Path) -> None:
    """A one-column header holding ``;``, tab or ``|`` is a file saved with another delimiter: say which."""
    if len(columns) != 1:
        return
    try:
        found = csv.Sniffer().sniff(columns[0], delimiters=";\t|").delimiter
    except csv.Error:
        return
    named = {";": "semicolon", "\t": "tab", "|": "pipe"}[found]
    raise DataError(f"CSV {path} has one column {columns[0]!r}: it looks {named}-delimited ({found!r}); clipbench "
                    f"reads comma-separated files, so save it with commas (Excel: 'CSV UTF-8 (Comma delimited)')")


@dataclass
class CSVAdapter(DatasetAdapter):
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
        try:
            # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark that would stick to the first column name
            with open(csv_path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                columns = list(reader.fieldnames or [])
                records = list(reader)
        except IsADirectoryError as exc:
            raise DataError(f"{spec}: {csv_path} is a folder, not a CSV file (for class folders use folder:{path})") from exc
        except OSError as exc:
            raise DataError(f"cannot read CSV {csv_path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise DataError(f"CSV {csv_path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            f"save it as UTF-8 (Excel: 'CSV UTF-8')") from exc
        except csv.Error as exc:
            raise DataError(f"CSV {csv_path} is malformed: {exc}") from exc
        if not records:
            raise DataError(f"CSV {csv_path} has no rows (expected one row per image with path and label columns)")
        _check_delimiter(columns, csv_path)
        image_col = _pick(columns, image_column, IMAGE_COLUMNS, "image path", csv_path)
        label_col = _pick(columns, label_column, LABEL_COLUMNS, "label", csv_path)
        has_split = split_column is not None and split_column in columns
        declared = _read_classnames_file(csv_path.parent)
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
            split = _split_name((record.get(split_column) or "").strip()) if has_split else "test"
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
            splits=tuple(s for s in ("train", "val", "test") if s in rows) + tuple(s for s in rows if s not in ("train", "val", "test")),
            path=csv_path, rows=rows,
        )
        return _apply_prompt_file(adapter, csv_path.parent)

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


# --------------------------------------------------------------------------------------------- hf:


class HFItems:
    """``(image, label)`` items of a Hugging Face dataset (module-level so DataLoader workers can pickle it)."""

    def __init__(self, dataset: Any, image_column: str, label_column: str) -> None:
        self.dataset, self.image_column, self.label_column = dataset, image_column, label_column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        row = self.dataset[int(index)]
        return row[self.image_column], row[self.label_column]


def hf_source(dataset: Any) -> dict:
    """The dataset's own identity: ``datasets``' fingerprint (it changes with every transform and with
    the data files it was built from) and its declared version; the Arrow files themselves (whose cache
    path carries the Hub revision) enter the split's manifest."""
    version = getattr(dataset.info, "version", None)
    return {"hf_fingerprint": getattr(dataset, "_fingerprint", None), "hf_version": str(version) if version else None}


def _hf_sample(inner: HFItems, index: int) -> str:
    return f"row {index} (column {inner.image_column!r}) of Hugging Face dataset {inner.dataset.info.dataset_name or ''}".rstrip()


@dataclass
class HFAdapter(DatasetAdapter):
    """A Hugging Face ``datasets`` dataset; built by ``HFAdapter.from_spec``."""

    spec: str = ""
    image_column: str = "image"
    label_column: str = "label"
    #: clipbench split -> the dataset's own split name
    split_names: dict[str, str] = field(default_factory=dict)
    source: Any = field(default=None, repr=False)

    @classmethod
    def from_spec(cls, spec: str, name: str | None = None, image_column: str | None = None,
                  label_column: str | None = None) -> DatasetAdapter:
        try:
            import datasets
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise DataError("hf: datasets need the 'datasets' package: pip install datasets") from exc
        if not spec.strip():
            raise DataError("hf: needs a dataset: hf:NAME (on the Hugging Face Hub) or hf:PATH (a save_to_disk folder)")
        local = Path(spec).expanduser()
        try:
            if local.exists():
                source = datasets.load_from_disk(str(local))
            else:
                source = datasets.load_dataset(spec)
        except FileNotFoundError as exc:
            raise DataError(f"hf:{spec}: {local} is not a dataset saved with save_to_disk ({exc})") from exc
        except Exception as exc:  # datasets raises many types for unreachable or malformed sources
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise DataError(f"hf:{spec}: cannot load it ({type(exc).__name__}: {first}); expected a local save_to_disk "
                            f"folder or a reachable dataset name") from exc
        if isinstance(source, datasets.Dataset):
            source = datasets.DatasetDict({"test": source})
        if not len(source):
            raise DataError(f"hf:{spec} has no splits")
        features = next(iter(source.values())).features
        columns = list(features)
        image_col = image_column or next((c for c in columns if isinstance(features[c], datasets.Image)), None)
        if image_col is None:
            image_col = _pick(columns, None, IMAGE_COLUMNS, "image", local)
        label_col = label_column or next((c for c in columns if isinstance(features[c], datasets.ClassLabel)), None)
        if label_col is None and not any(c.lower() in LABEL_COLUMNS for c in columns):
            from clipbench.datasets.image_text import CAPTION_COLUMNS, HFCaptionAdapter

            if any(c.lower() in CAPTION_COLUMNS for c in columns):  # an image-caption dataset
                return HFCaptionAdapter.from_source(spec, name, source, image_col, columns)
        if label_col is None:
            label_col = _pick(columns, None, LABEL_COLUMNS, "label", local)
        for col in (image_col, label_col):
            if col not in columns:
                raise DataError(f"hf:{spec}: no column {col!r} (columns: {', '.join(columns)})")
        label_feature = features[label_col]
        if isinstance(label_feature, datasets.ClassLabel):
            classnames = [n.replace("_", " ") for n in label_feature.names]
        else:
            highest = max(int(max(ds[label_col])) for ds in source.values() if len(ds))
            classnames = [str(i) for i in range(highest + 1)]
        require_classes(classnames, name or f"hf:{spec}", "class")
        split_names = {_split_name(s): s for s in source}
        adapter = cls(
            name=name or f"hf:{spec}", classnames=classnames, templates=list(DEFAULT_TEMPLATES),
            splits=tuple(s for s in ("train", "val", "test") if s in split_names)
            + tuple(s for s in split_names if s not in ("train", "val", "test")),
            spec=spec, image_column=image_col, label_column=label_col, split_names=split_names, source=source,
        )
        return _apply_prompt_file(adapter, local) if local.is_dir() else adapter

    def is_present(self, data_root: Path | None = None) -> bool:
        return self.source is not None

    def load_split(self, split: str, data_root: Path | None = None) -> SplitData:
        if split not in self.split_names:
            raise DataError(f"{self.name} has no split {split!r} (expected one of: {', '.join(self.splits)})")
        dataset = self.source[self.split_names[split]]
        labels = np.asarray(dataset[self.label_column], dtype=np.int64)
        if len(labels) == 0:
            raise DataError(f"{self.name}: split {split!r} is empty")
        if labels.min() < 0 or labels.max() >= len(self.classnames):
            raise DataError(f"{self.name}: split {split!r} has labels outside 0..{len(self.classnames) - 1}")
        return WrappedSplit(self.name, split, HFItems(dataset, self.image_column, self.label_column), labels, _hf_sample,
                            data_files=[f["filename"] for f in dataset.cache_files], source=hf_source(dataset))
