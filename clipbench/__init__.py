"""clipbench: benchmark CLIP-style image-text models the way the CLIP paper did.

The public API is re-exported here lazily so that `import clipbench` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "predict": "clipbench.engine.prediction",
    "get_dataset": "clipbench.datasets",
    "run": "clipbench.api",
    "compare": "clipbench.api",
    "lite": "clipbench.api",
    "build_report": "clipbench.results.report",
    "load_model": "clipbench.models",
    "tokenize": "clipbench.models",
    "linear_probe": "clipbench.tasks.linear_probe",
    "fewshot_linear_probe": "clipbench.tasks.fewshot",
    "build_index": "clipbench.engine.search",
}
#: public submodules, imported on first attribute access (``clipbench.clip.load(...)``)
_SUBMODULES = {"clip": "clipbench.clip"}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'clipbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])


__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]
