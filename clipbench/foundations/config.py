"""Where clipbench reads and writes: one object, resolved from arguments, then environment, then defaults.

Nothing here is read at import time; every function that touches disk takes a ``Paths`` (or
resolves one from its arguments), so tests and users can point it anywhere.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from clipbench.foundations import torch_env

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


#: The Hugging Face libraries' own offline switches. They read the environment when first
#: imported, so ``hf_offline`` also sets the module constants of those already imported.
HF_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
_HF_OFFLINE_CONSTANTS = (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                         ("datasets.config", "HF_DATASETS_OFFLINE"), ("transformers.utils.hub", "_is_offline_mode"))


@contextlib.contextmanager
def hf_offline(enabled: bool = True) -> Iterator[None]:
    """Offline mode for ``hf:`` models and datasets: nothing reaches the Hub while this is active.

    Without this, ``datasets.load_dataset`` ignores clipbench's ``--offline`` and retries the
    network for half a minute. Restores the environment and the constants afterwards.
    """
    if not enabled:
        yield
        return
    saved_env = {name: os.environ.get(name) for name in HF_OFFLINE_ENV}
    saved_consts = {}
    for module_name, attr in _HF_OFFLINE_CONSTANTS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attr):
            saved_consts[(module_name, attr)] = getattr(module, attr)
            setattr(module, attr, True)
    os.environ.update(dict.fromkeys(HF_OFFLINE_ENV, "1"))
    try:
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        was = any(_truthy(v) for v in saved_env.values())
        for module_name, attr in _HF_OFFLINE_CONSTANTS:  # modules imported meanwhile read "1": undo that too
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, attr):
                setattr(module, attr, saved_consts.get((module_name, attr), was))


def check_device(device: str) -> str:
    """``device`` if torch can run clipbench on it; a one-line error for unknown or data-less devices."""
    torch_env.parse_device(device)
    return device


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

    @property
    def models_dir(self) -> Path:
        """Native checkpoints' descriptions by weights SHA-256 (``clipbench.models.description``)."""
        return self.cache_dir / "models"
