"""Where clipbench reads and writes: one object, resolved from arguments, then environment, then defaults.

Nothing here is read at import time; every function that touches disk takes a ``Paths`` (or
resolves one from its arguments), so tests and users can point it anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

ENV_CACHE = "CLIPBENCH_CACHE"
ENV_DATA = "CLIPBENCH_DATA"
ENV_OFFLINE = "CLIPBENCH_OFFLINE"
ENV_DEBUG = "CLIPBENCH_DEBUG"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Model checkpoints, features and text classifiers live here."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    return Path(platformdirs.user_cache_dir("clipbench"))


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """Datasets live here, one folder per dataset."""
    if data_root is not None:
        return Path(data_root).expanduser()
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser()
    return Path(platformdirs.user_data_dir("clipbench"))


def resolve_offline(offline: bool | None = None) -> bool:
    """True means: never touch the network; a needed download is an error that says what to place where."""
    if offline is not None and offline:
        return True
    return _truthy(os.environ.get(ENV_OFFLINE))


def debug_enabled() -> bool:
    return _truthy(os.environ.get(ENV_DEBUG))


@dataclass(frozen=True)
class Paths:
    cache_dir: Path
    data_root: Path
    results_dir: Path
    offline: bool = False

    @classmethod
    def resolve(
        cls,
        cache_dir: str | os.PathLike | None = None,
        data_root: str | os.PathLike | None = None,
        results_dir: str | os.PathLike | None = None,
        offline: bool | None = None,
    ) -> Paths:
        return cls(
            cache_dir=resolve_cache_dir(cache_dir),
            data_root=resolve_data_root(data_root),
            results_dir=Path(results_dir if results_dir is not None else "results").expanduser(),
            offline=resolve_offline(offline),
        )

    @property
    def checkpoints_dir(self) -> Path:
        return self.cache_dir / "checkpoints"

    @property
    def features_dir(self) -> Path:
        return self.cache_dir / "features"

    @property
    def text_dir(self) -> Path:
        return self.cache_dir / "text"
