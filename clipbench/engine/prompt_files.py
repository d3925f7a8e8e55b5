"""``--prompts [DATASET=]FILE``: a user's classnames and/or templates file for a dataset of the run.

The option's value (``"imagenet1k=mine.yaml,cifar10=c10.json"``, a list of such entries, or a mapping dataset ->
file) becomes ``((dataset, path), ...)``, dataset "" where an entry names none (``prompts_list``);
``with_run_prompts`` applies each file to its dataset through ``datasets.prompts.with_prompts``, the one reader
(YAML/JSON through safe loaders, one classname per class, classification sets only), before any model loads. A
file that names no dataset needs a run of exactly one dataset. Under ``--language`` the file wins over the
packaged translation (``datasets.languages``).

A text task's record on such a dataset carries ``prompts`` (``prompts_block``: the file's name and SHA-256, what it
gives), and ``results.records.record_variant`` adds ``prompts=<sha256[:12]>`` to its variant, so it never shares a
leaderboard row or a compare match with the packaged prompts' records. The text cache is keyed by the exact texts
encoded (``features.text_store``), so it never serves one prompt set's features for another's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clipbench.datasets.base import DatasetAdapter
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.registry import normalize_name

#: what ``--prompts`` takes, for the one-line message of a malformed value
WHAT = "[DATASET=]FILE entries, comma-separated (a FILE alone when the run has one dataset), or null"


def _entry(text: Any) -> tuple[str, str]:
    """``"imagenet1k=a.yaml"`` -> ("imagenet1k", "a.yaml"), ``"folder:/x=a.yaml"`` -> ("folder:/x", "a.yaml");
    ``"a.yaml"`` (or a path whose "=" follows a "/") -> ("", "a.yaml")."""
    from clipbench.datasets.registry import SPECS

    if not isinstance(text, str) or not text.strip():
        raise ClipbenchError(f"--prompts takes {WHAT}; got {text!r}")
    name, eq, path = text.strip().partition("=")
    spec = name.partition(":")[0].strip().lower() in SPECS and ":" in name
    if not eq or not name.strip() or (any(sep in name for sep in "/\\") and not spec):
        return "", text.strip()
    if not path.strip():
        raise ClipbenchError(f"--prompts {text.strip()!r} names no file after '='")
    return name.strip(), path.strip()


def prompts_list(value: Any) -> tuple[tuple[str, str], ...]:
    """The ``prompts`` option as ((dataset or "", file), ...); a dataset named twice, or an unnamed file among
    several, is an error."""
    if isinstance(value, Mapping):
        entries = [(k.strip(), v.strip()) if isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip()
                   else _entry(None) for k, v in value.items()]
    else:
        entries = [_entry(v) for v in (value.split(",") if isinstance(value, str) else list(value))]
    if not entries:
        raise ClipbenchError(f"--prompts takes {WHAT}; got none")
    names = [normalize_name(name) for name, _ in entries]
    if "" in names and len(entries) > 1:
        raise ClipbenchError("--prompts: with several files, name each one's dataset (DATASET=FILE)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ClipbenchError(f"--prompts names dataset {repeated[0]} more than once")
    return tuple(entries)


def valid_prompts_option(value: Any) -> bool:
    """The option's check: a malformed value raises ``prompts_list``'s own one-line reason."""
    if value is not None and not isinstance(value, (str, list, tuple, Mapping)):
        return False
    return value is None or bool(prompts_list(value))


def _is(name: str, adapter: DatasetAdapter, item: Any) -> bool:
    """Whether ``name`` (as given to ``--prompts``) is this dataset of the run: its name, an alias, or its spec."""
    from clipbench.datasets.registry import DATASETS

    if (isinstance(item, str) and item.strip() == name) or normalize_name(name) == normalize_name(adapter.name):
        return True
    try:
        return DATASETS.canonical(name) == adapter.name
    except ClipbenchError:
        return False


def with_run_prompts(adapters: Sequence[DatasetAdapter], items: Sequence[Any],
                     entries: Sequence[tuple[str, str]] | None) -> list[DatasetAdapter]:
    """``adapters`` (the run's datasets, ``items`` as given) with each ``--prompts`` file applied to its dataset."""
    from clipbench.datasets.prompts import with_prompts

    out = list(adapters)
    if not entries:
        return out
    shown = ", ".join(a.name for a in out)
    for name, path in entries:
        if not name and len(out) != 1:
            raise ClipbenchError(f"--prompts {path}: the run has {len(out)} datasets ({shown}); name the one the "
                                 f"file is for: --prompts DATASET={path}")
        hits = [i for i, (a, item) in enumerate(zip(out, items, strict=True)) if not name or _is(name, a, item)]
        if not hits:
            raise ClipbenchError(f"--prompts {name}={path}: {name} is not a dataset of this run ({shown})")
        for i in hits:
            out[i] = with_prompts(out[i], Path(path))
    return out


def check_prompts_used(adapters: Sequence[DatasetAdapter], tasks_of) -> None:
    """A ``--prompts`` file on a dataset none of whose tasks encodes class prompts would change nothing: an error
    (``tasks_of(adapter)``: the tasks the run scores it with)."""
    for adapter in adapters:
        if getattr(adapter, "user_prompts", None) is not None and not any(t.uses_text for t in tasks_of(adapter)):
            raise ClipbenchError(f"--prompts: none of this run's tasks on {adapter.name} "
                                 f"({', '.join(t.name for t in tasks_of(adapter))}) encodes class prompts")


def prompts_block(adapter: DatasetAdapter) -> dict | None:
    """The record's ``prompts`` of a dataset scored with a user's prompt file (not one beside its data): the
    file's name, the SHA-256 of its bytes (of its texts as JSON for a prompt set built in code), what it
    gives and the language it declares; None for the packaged prompts."""
    own = getattr(adapter, "user_prompts", None)
    if own is None or own.beside_data:
        return None
    digest = own.sha256 or hashlib.sha256(json.dumps(
        {"classnames": own.classnames, "templates": own.templates, "synonyms": own.synonyms},
        ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()
    gives = [key for key, value in (("classnames", own.classnames), ("templates", own.templates)) if value]
    return {"source": "user", "file": Path(own.where).name if own.where else None, "sha256": digest,
            "gives": gives, "language": own.language or None}
