"""clipbench's own CLIP implementation behind the ``ImageTextModel`` interface."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from clipbench.foundations.errors import ClipbenchError
from clipbench.models.architecture import CLIP
from clipbench.models.base import ImageTextModel
from clipbench.models.preprocess import clip_preprocess, clip_preprocess_id
from clipbench.models.tokenizer import tokenize


class NativeClipModel(ImageTextModel):
    """An OpenAI-format CLIP checkpoint run by ``clipbench.models.architecture``.

    ``module`` is the plain ``nn.Module`` (eval mode) for anyone who needs gradients; the
    ``encode_*`` methods here run under ``torch.inference_mode`` for speed.
    """

    def __init__(self, module: CLIP, name: str, weights_sha256: str) -> None:
        self.module = module.eval()
        self.config = module.config
        self.name = name
        self.weights_sha256 = weights_sha256
        self.family = self.config.family
        self.image_resolution = self.config.image_resolution
        self.embed_dim = self.config.embed_dim
        self.context_length = self.config.context_length
        self._preprocess = None

    @property
    def preprocess(self):
        """CLIP's transform (PIL and numpy, ``models.preprocess``), built on first use."""
        if self._preprocess is None:
            self._preprocess = clip_preprocess(self.image_resolution)
        return self._preprocess

    @preprocess.setter
    def preprocess(self, transform) -> None:
        self._preprocess = transform

    def __repr__(self) -> str:
        return f"NativeClipModel(name={self.name!r}, family={self.family!r}, device={str(self.device)!r})"

    @property
    def preprocess_id(self) -> str:
        return clip_preprocess_id(self.image_resolution)

    def tokenize(self, texts: str | Sequence[str], truncate: bool = False) -> torch.Tensor:
        return tokenize(texts, context_length=self.context_length, truncate=truncate)

    def encode_image(self, images: torch.Tensor, projected: bool = True) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ClipbenchError(f"{self.name}: expected images of shape [N, 3, H, W], got {tuple(images.shape)}")
        with torch.inference_mode():
            return self.module.encode_image(images.to(self.device), projected=projected)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] > self.context_length:
            raise ClipbenchError(
                f"{self.name}: expected token ids of shape [N, <= {self.context_length}], got {tuple(tokens.shape)}"
            )
        vocab = self.config.vocab_size
        if tokens.numel() and (int(tokens.max()) >= vocab or int(tokens.min()) < 0):
            raise ClipbenchError(f"{self.name}: token ids must lie in [0, {vocab}) for this checkpoint's vocabulary")
        with torch.inference_mode():
            return self.module.encode_text(tokens.to(self.device, torch.long))

    def num_params(self) -> dict[str, int]:
        image = sum(p.numel() for p in self.module.visual.parameters())
        total = sum(p.numel() for p in self.module.parameters())
        return {"image": image, "text": total - image - self.module.logit_scale.numel(), "total": total}
