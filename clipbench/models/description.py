"""A native checkpoint's description, remembered by the SHA-256 of its bytes, and a model that answers from it.

Before it encodes anything, the engine asks a model only for its description: name, identity,
family, preprocessing id, device. When every feature a run needs is already cached, that is all
it asks, yet building the model reads every tensor of the checkpoint and imports torch (together
about 1.5 s of a 2-3 s warm rerun on a CPU).

So the first load of a checkpoint writes what the built model answered to
``<cache>/models/<sha256>.json`` (atomically), and a later load of a file with the same SHA-256
(always hashed, or verified against the registry's hash: the key names the bytes, never a path or
a date) returns a ``DescribedModel``. It answers the description from that file and builds the
real model, through the loader it was given, the first time anything else is needed: an encoder,
the tokenizer, the module, the device object. Features, text features and records are therefore
keyed and filled exactly as with the built model; ``tests/engine/test_warm_start.py`` checks that a warm
rerun scores without importing torch and writes the same metrics.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.fileio import atomic_write_json
from clipbench.foundations.torch_env import device_type
from clipbench.models.base import ImageTextModel

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: 1: the fields below; a description of another schema, or written by another clipbench version, is not used
DESCRIPTION_SCHEMA = 1
FIELDS = ("identity_kind", "family", "image_resolution", "embed_dim", "context_length", "preprocess_id",
          "num_params", "logit_scale", "tokenizer_id")


def description_path(models_dir: str | os.PathLike, sha256: str) -> Path:
    return Path(models_dir) / f"{sha256}.json"


def _version() -> str:
    import clipbench

    return clipbench.__version__


def describe(model: ImageTextModel) -> dict:
    """What ``model`` answers before it encodes anything (the identity's kind is its class name)."""
    kind, _, sha = model.identity.partition(":")
    if sha != model.weights_sha256:
        raise ValueError(f"{model.name}: identity {model.identity!r} is not <kind>:<weights sha256>")
    return {"schema": DESCRIPTION_SCHEMA, "clipbench": _version(), "weights_sha256": model.weights_sha256,
            "identity_kind": kind, "family": model.family, "image_resolution": model.image_resolution,
            "embed_dim": model.embed_dim, "context_length": model.context_length,
            "preprocess_id": model.preprocess_id, "num_params": model.num_params(),
            "logit_scale": model.learned_logit_scale(), "tokenizer_id": model.tokenizer_id}


def remember(models_dir: str | os.PathLike, model: ImageTextModel) -> None:
    """Write ``model``'s description for its weights (best effort: a read-only cache only costs the next load)."""
    try:
        atomic_write_json(description_path(models_dir, model.weights_sha256), describe(model))
    except (OSError, ClipbenchError) as exc:
        log.debug("could not remember the description of %s: %s", model.name, exc)


def recall(models_dir: str | os.PathLike, sha256: str) -> dict | None:
    """The description remembered for weights ``sha256``, or None (absent, unreadable, another version)."""
    path = description_path(models_dir, sha256)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and data.get("schema") == DESCRIPTION_SCHEMA and data.get("clipbench") == _version()
            and data.get("weights_sha256") == sha256 and all(f in data for f in FIELDS)):
        log.debug("ignoring the model description %s (another schema or clipbench version)", path)
        return None
    return data


class DescribedModel(ImageTextModel):
    """A model known by its remembered description; the real one is built on first use (see the module doc)."""

    def __init__(self, description: dict, name: str, device: str, build: Callable[[str], ImageTextModel]) -> None:
        self.name = name
        self.weights_sha256 = description["weights_sha256"]
        self.family = description["family"]
        self.image_resolution = int(description["image_resolution"])
        self.embed_dim = int(description["embed_dim"])
        self.context_length = int(description["context_length"])
        self._description = description
        self._device = device
        self._build = build
        self._model: ImageTextModel | None = None

    @property
    def built(self) -> ImageTextModel:
        """The real model (built now if it was not yet)."""
        if self._model is None:
            log.debug("building %s: needed beyond its description", self.name)
            self._model = self._build(self._device)
        return self._model

    @property
    def identity(self) -> str:
        return f"{self._description['identity_kind']}:{self.weights_sha256}"

    @property
    def preprocess_id(self) -> str:
        return self._description["preprocess_id"]

    @property
    def tokenizer_id(self) -> str:
        return self._description["tokenizer_id"]

    @property
    def device_type(self) -> str:
        return self.built.device_type if self._model is not None else device_type(self._device)

    @property
    def device(self) -> torch.device:
        return self.built.device

    @property
    def module(self):
        return self.built.module

    @property
    def preprocess(self):
        return self.built.preprocess

    def to(self, device: str | torch.device) -> DescribedModel:
        if self._model is None:
            self._device = str(device)
        else:
            self._model.to(device)
        return self

    def tokenize(self, texts: str | Sequence[str], *args, **kwargs) -> torch.Tensor:
        return self.built.tokenize(texts, *args, **kwargs)

    def encode_image(self, images: torch.Tensor, projected: bool = True) -> torch.Tensor:
        return self.built.encode_image(images, projected=projected)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.built.encode_text(tokens)

    def num_params(self) -> dict[str, int]:
        return dict(self._description["num_params"])

    def learned_logit_scale(self) -> float | None:
        return self._description["logit_scale"]

    def __getattr__(self, name: str):  # anything else a backend offers (e.g. ``config``): the real model's
        if name.startswith("_") or name == "built":  # (a failing build must not recurse through here)
            raise AttributeError(name)
        return getattr(self.built, name)

    def __repr__(self) -> str:
        state = "built" if self._model is not None else "described"
        return f"DescribedModel(name={self.name!r}, family={self.family!r}, device={self._device!r}, {state})"
