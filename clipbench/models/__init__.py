"""Models: native CLIP architectures, checkpoint registry and downloads, tokenizer, preprocessing.

Public entry points: ``load_model``, ``tokenize``, ``describe_models``, ``MODELS``.
"""

from __future__ import annotations

from clipbench.models.listing import describe_models
from clipbench.models.loading import BACKENDS, load_model
from clipbench.models.registry import MODELS, register_checkpoint
from clipbench.models.tokenizer import tokenize

__all__ = ["BACKENDS", "MODELS", "describe_models", "load_model", "register_checkpoint", "tokenize"]
