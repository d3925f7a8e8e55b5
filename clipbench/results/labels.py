"""Model labels as the report and the plots show them: a variant run is ``model [variant]``, and a checkpoint
path is shown by its file's stem. (Outside ``report/``, so the plots can use it without importing the report.)"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path


def labelled(model: str, variant: str) -> str:
    """A non-default run (--limit, bf16, ...) shows as its own row: ``ViT-B/16 [limit=500]``."""
    return f"{model} [{variant}]" if variant else model


def unlabelled(model: str) -> str:
    return re.sub(r" \[[^\]]*\]$", "", model)


def variant_of(label: str) -> str:
    """``"RN50 [limit=50]"`` -> ``"limit=50"`` (the suffix ``labelled`` adds); ``""`` for a default run."""
    m = re.search(r" \[([^\]]*)\]$", label)
    return m[1] if m else ""


_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".safetensors", ".ckpt"}


def _is_path(model: str) -> bool:
    if re.match(r"(?i)(openclip|hf):", model):
        return False
    return Path(model).suffix.lower() in _CHECKPOINT_SUFFIXES or model.startswith(("/", "./", "../", "~"))


def short_names(labels: list[str], hashes: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Display names: a checkpoint path becomes its file's stem (plus a prefix of its weights' SHA-256 from
    ``hashes``, label -> hash, when two stems clash)."""
    bases = list(dict.fromkeys(unlabelled(label) for label in labels))
    sha: dict[str, str | None] = {}
    for label in labels:
        sha.setdefault(unlabelled(label), None)
        sha[unlabelled(label)] = sha[unlabelled(label)] or (hashes or {}).get(label)

    def clashes(names: dict[str, str]) -> set[str]:
        return {b for b in bases if sum(1 for v in names.values() if v == names[b]) > 1}

    short = {b: (Path(b).stem if _is_path(b) else b) for b in bases}
    short |= {b: f"{short[b]} ({sha[b][:8]})" for b in clashes(short) if _is_path(b) and sha[b]}
    short |= {b: b for b in clashes(short)}  # still ambiguous (same stem and hash at two paths): the path
    out = {}
    for label in labels:
        variant = variant_of(label)
        out[label] = labelled(short[unlabelled(label)], variant)
    return out
