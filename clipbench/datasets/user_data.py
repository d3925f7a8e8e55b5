"""What the sources the user points at share: column picking, split names, and the ``classnames.txt``
and ``prompts.yaml`` that may sit beside the data (``folder:``, ``csv:``, ``hf:``, ``wds:``, ``pairs:``)."""

from __future__ import annotations

import csv
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from clipbench.datasets.base import DatasetAdapter
from clipbench.datasets.prompts import load_prompt_file, with_prompts
from clipbench.foundations.errors import DataError

log = logging.getLogger(__name__)

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


def comma_hint(path: Path) -> str:
    """For a path that does not exist: a hint when a sibling's name continues it with a comma (``/data/a,b``
    given as ``folder:/data/a,b`` reached us as ``/data/a``, since dataset lists split on commas)."""
    try:
        cut = path.parent.is_dir() and any(p.name.startswith(path.name + ",") for p in path.parent.iterdir())
    except OSError:
        cut = False
    return (f"; {path.parent / (path.name + ',...')} exists: dataset lists split on commas, so write a comma in a "
            f"path as \\, (or quote it so the shell keeps the backslash)") if cut else ""


_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def read_csv(path: Path, delimiter: str = ",") -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a ``csv:`` or ``pairs:`` file: UTF-8 with or without a byte-order mark (Excel's
    "CSV UTF-8", whose mark would otherwise stick to the first column name), any failure one DataError line,
    and a one-column header that holds another delimiter named as such."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            columns = list(reader.fieldnames or [])
            records = list(reader)
    except OSError as exc:
        raise DataError(f"cannot read CSV {path}: {exc.strerror or exc}{comma_hint(path)}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"CSV {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                        f"save it as UTF-8 (Excel: 'CSV UTF-8')") from exc
    except csv.Error as exc:
        raise DataError(f"CSV {path} is malformed: {exc}") from exc
    if len(columns) == 1:
        try:
            found = csv.Sniffer().sniff(columns[0], delimiters="".join(d for d in _DELIMITERS if d != delimiter)).delimiter
        except csv.Error:
            found = None
        if found:
            ours = _DELIMITERS[delimiter]
            excel = " (Excel: 'CSV UTF-8 (Comma delimited)')" if delimiter == "," else ""
            raise DataError(f"CSV {path} has one column {columns[0]!r}: it looks {_DELIMITERS[found]}-delimited "
                            f"({found!r}); clipbench reads {ours}-separated {path.suffix} files, so save it "
                            f"with {ours}s{excel}")
    return columns, records


def read_classnames_file(folder: Path) -> list[str] | None:
    """``folder/classnames.txt``: one classname per line, in label order; None when absent."""
    path = folder / "classnames.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path} is empty (expected one classname per line, in label order)")
    return names


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


def _shown(names: Sequence[str]) -> str:
    return ", ".join(names[:12]) + (f" ... ({len(names)} in all)" if len(names) > 12 else "")


def order_by_name(names: Sequence[Sequence[str]], keys: Sequence[str], source: str | Path) -> list[int]:
    """For each class (in ``keys`` order, e.g. the sorted class folders), the index of its entry in ``names``.

    ``names[i]`` are the names of a file's entry ``i`` (a classname, or a classname and its synonyms).
    A name *matches* a key when they are equal up to case and ``_`` versus space. When every entry
    matches a different key, entries map by name, whatever their order: a file listing ``zero``..``nine``
    in counting order must not give folder ``eight/`` the name ``zero``. When no entry contradicts its
    position (none matches, or each match sits at its key's position: display names in label order), the
    file is read by position and the pairing is logged. Otherwise it is an error showing both lists.
    """
    index: dict[str, int | None] = {}
    for i, k in enumerate(keys):
        index[_key(k)] = None if _key(k) in index else i  # a key shared by two classes identifies neither
    found = [next((index[_key(n)] for n in entry if index.get(_key(n)) is not None), None) for entry in names]
    firsts = [entry[0] for entry in names]
    if len(names) == len(keys) and None not in found and len(set(found)) == len(keys):
        order = [found.index(i) for i in range(len(keys))]
        if order != list(range(len(keys))):
            log.info("%s: names mapped to classes by name (the file's order differs from the classes' %s)",
                     source, _shown(list(keys)))
        return order
    if len(names) == len(keys) and all(f is None or f == i for i, f in enumerate(found)):
        log.info("%s: names taken by position: %s", source,
                 _shown([f"{k} -> {n}" for k, n in zip(keys, firsts, strict=True)]))
        return list(range(len(keys)))
    raise DataError(f"{source}: its {len(names)} names ({_shown(firsts)}) do not match the {len(keys)} classes "
                    f"({_shown(list(keys))}): list each class once, by its name (any order), or give display "
                    f"names that are not class names, one per line in the classes' order")


def apply_prompt_file(adapter: DatasetAdapter, folder: Path, keys: Sequence[str] | None = None) -> DatasetAdapter:
    """The adapter with the ``prompts.yaml`` (``.yml``, ``.json``) beside its data applied, if there is one.

    Its classnames are matched to the classes by name where they can be (``order_by_name``); ``keys`` name the
    classes (the class folders for ``folder:``), else the adapter's classnames do."""
    for candidate in ("prompts.yaml", "prompts.yml", "prompts.json"):
        path = folder / candidate
        if path.is_file():
            prompts = load_prompt_file(path)
            if prompts.classnames:
                entries = [prompts.synonyms.get(c, [c]) for c in prompts.classnames]
                order = order_by_name(entries, adapter.classnames if keys is None else keys, path)
                prompts = dataclasses.replace(prompts, classnames=[prompts.classnames[i] for i in order])
            return with_prompts(adapter, dataclasses.replace(prompts, beside_data=True))
    return adapter


def require_classes(classes: list[str], spec: str, what: str) -> None:
    """Classification needs two classes or more: with one, every image is "correct" and scores 100%."""
    if len(classes) < 2:
        found = f"1 {what} ({classes[0]})" if classes else f"no {what}"
        raise DataError(f"{spec} has {found}; classification needs at least 2 classes "
                        f"(with one, every image would score 100%)")
