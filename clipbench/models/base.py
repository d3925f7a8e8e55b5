"""The interface every model backend (native CLIP, open_clip, Hugging Face) presents to the engine.

The engine only ever sees this: tensors in, features out, plus the identity and preprocessing
strings that go into cache keys and result rows.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the interface itself needs no torch: a model served from the caches never loads it
    import torch
    from PIL import Image


class ImageTextModel(abc.ABC):
    """A CLIP-like model: an image tower, a text tower, a tokenizer and a preprocessing transform."""

    #: Name as the user asked for it, canonicalised (e.g. "ViT-B/16", "openclip:ViT-B-16/laion2b_s34b_b88k").
    name: str
    #: SHA-256 of the weights file (native) or of the weights' contents; changes whenever the numbers can.
    weights_sha256: str
    #: "ResNet", "ViT" or "other"; used by reports.
    family: str
    image_resolution: int
    embed_dim: int
    context_length: int
    #: torchvision transform: PIL image -> float tensor [3, H, W].
    preprocess: Callable[[Image.Image], torch.Tensor]

    @property
    def identity(self) -> str:
        """What the feature cache keys on for the weights: backend + name + weights hash."""
        return f"{type(self).__name__}:{self.weights_sha256}"

    @property
    def tokenizer_id(self) -> str:
        """Names the tokenizer and its context length (the text cache keys on it): CLIP's BPE unless a backend
        brings its own (``clipbench.models.backends.tokenizer_identity``)."""
        return f"clip-bpe:{self.context_length}"

    @property
    @abc.abstractmethod
    def preprocess_id(self) -> str:
        """A short string that changes whenever preprocessing would produce different pixels."""

    @abc.abstractmethod
    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Texts -> LongTensor [N, context_length]."""

    @abc.abstractmethod
    def encode_image(self, images: torch.Tensor, projected: bool = True) -> torch.Tensor:
        """Preprocessed images [N, 3, H, W] -> features [N, D] (not normalised)."""

    @abc.abstractmethod
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids [N, L] -> features [N, embed_dim] (not normalised)."""

    #: The wrapped torch module; ``device`` and ``to`` act on it (backends without one override both).
    module: torch.nn.Module

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def device_type(self) -> str:
        """``cpu`` or ``cuda``: what cache keys name (a model not yet built knows it without torch)."""
        return self.device.type

    def to(self, device: str | torch.device) -> ImageTextModel:
        self.module.to(device)
        return self

    def learned_logit_scale(self) -> float | None:
        """``exp(logit_scale)``: the softmax temperature the model was trained with (CLIP's, open_clip's and Hugging
        Face's modules all hold ``logit_scale``); None when the module has none. Calibration scores at it."""
        param = getattr(getattr(self, "module", None), "logit_scale", None)
        return None if param is None else float(param.detach().float().exp().item())

    @abc.abstractmethod
    def num_params(self) -> dict[str, int]:
        """{"image": ..., "text": ..., "total": ...} parameter counts."""
