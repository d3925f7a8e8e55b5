"""Models: native CLIP architectures, checkpoint registry and downloads, tokenizer, preprocessing.

Public entry points: ``load_model``, ``tokenize``, ``describe_models``, ``MODELS``. The ones that
need torch load on first use, so that ``clipbench list models`` starts without it.
"""

from __future__ import annotations

import importlib

from clipbench.models.listing import describe_models
from clipbench.models.registry import MODELS, register_checkpoint

#: name -> module of the entry points that import torch (loaded on first access)
_LAZY = {"BACKENDS": "clipbench.models.loading", "load_model": "clipbench.models.loading",
         "tokenize": "clipbench.models.tokenizer"}

__all__ = ["BACKENDS", "MODELS", "describe_models", "load_model", "register_checkpoint", "tokenize"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
