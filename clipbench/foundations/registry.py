"""An explicit name -> object registry with aliases, duplicate rejection and "did you mean".

Every registry in clipbench (models, datasets, suites) is one of these, filled by explicit
``register`` calls in the module that owns the entries; nothing registers itself by import magic.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Generic, TypeVar

from clipbench.foundations.errors import UnknownNameError

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Case-, slash-, dash- and underscore-insensitive key: 'ViT-B/16' == 'vit_b_16' == 'vit-b-16'."""
    return re.sub(r"[\s/_\-]+", "-", name.strip().lower())


class Registry(Generic[T]):
    """Canonical names map to entries; aliases map to canonical names; lookups ignore case/separators."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._keys: dict[str, str] = {}  # normalized name or alias -> canonical name

    def register(self, name: str, entry: T, aliases: tuple[str, ...] | list[str] = ()) -> T:
        for key in (name, *aliases):
            norm = normalize_name(key)
            if norm in self._keys:
                raise ValueError(f"{self.kind} {key!r} is already registered (as {self._keys[norm]!r})")
        self._entries[name] = entry
        for key in (name, *aliases):
            self._keys[normalize_name(key)] = name
        return entry

    def add_aliases(self, name: str, aliases: tuple[str, ...] | list[str]) -> None:
        """More spellings of an entry already registered (other tools' names for it); duplicates are rejected."""
        if name not in self._entries:
            raise KeyError(f"{self.kind} {name!r} is not registered")
        for key in aliases:
            norm = normalize_name(key)
            if norm in self._keys:
                raise ValueError(f"{self.kind} {key!r} is already registered (as {self._keys[norm]!r})")
        for key in aliases:
            self._keys[normalize_name(key)] = name

    def canonical(self, name: str) -> str:
        norm = normalize_name(name)
        if norm in self._keys:
            return self._keys[norm]
        close = difflib.get_close_matches(norm, list(self._keys), n=3, cutoff=0.5)
        suggestions = sorted({self._keys[c] for c in close})
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})"
        )

    def get(self, name: str) -> T:
        return self._entries[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._keys

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __len__(self) -> int:
        return len(self._entries)
