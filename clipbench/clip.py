"""OpenAI's ``clip`` package API on clipbench's models: change ``import clip`` to ``from clipbench import clip``.

``available_models()``, ``load(name, device, jit, download_root) -> (model, preprocess)`` and
``tokenize(texts, context_length, truncate)`` behave as in openai/CLIP (``tokenize`` returns int32 ids,
``preprocess.transforms`` lists torchvision's steps), but every model spec
``clipbench.load_model`` takes works (registered names, local checkpoint files, ``openclip:`` and
``hf:`` specs), downloads go through clipbench's SHA-256-verified cache, and the numbers come
from clipbench's own (parity-tested) implementation.

The returned ``CLIPModel`` is an ``nn.Module`` with OpenAI's surface: ``encode_image``,
``encode_text``, ``forward(image, text) -> (logits_per_image, logits_per_text)`` scaled by the
checkpoint's own learned temperature, ``visual.input_resolution``, ``context_length``,
``vocab_size``, ``dtype`` and ``logit_scale``. Unlike ``ImageTextModel.encode_*`` (which run under
``torch.inference_mode``), these run with autograd as usual, so scripts may fine-tune, use
``torch.no_grad()`` themselves, or normalise the features in place.

Differences from openai/CLIP (also in the README):

* ``jit=True`` returns the same eager model (with a warning): clipbench has no TorchScript path,
  and its eager model gives the same numbers.
* Weights stay in fp32 on every device (OpenAI's ``load`` casts to fp16 on CUDA); call
  ``model.half()`` yourself for fp16.
* ``download_root`` is a clipbench cache directory (checkpoints live in ``<root>/checkpoints/``);
  a checkpoint already in OpenAI's layout (``<root>/ViT-B-32.pt``) is reused after its SHA-256 is
  checked.
* Unknown names raise ``UnknownNameError`` (a ``KeyError``) listing the closest names; an
  over-long text raises ``ContextLengthError``, a ``RuntimeError`` as in OpenAI's tokenizer.
* For ``openclip:``/``hf:`` models whose tokenizer is not CLIP's BPE, ``clip.tokenize`` ids do
  not fit the model: use ``model.tokenize`` (a warning at load says so).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from clipbench.foundations import torch_env
from clipbench.foundations.errors import ClipbenchError
from clipbench.models import MODELS, load_model
from clipbench.models.base import ImageTextModel
from clipbench.models.download import is_verified
from clipbench.models.loading import load_checkpoint_file
from clipbench.models.native import NativeClipModel
from clipbench.models.tokenizer import CONTEXT_LENGTH
from clipbench.models.tokenizer import tokenize as _clip_tokenize

log = logging.getLogger(__name__)

__all__ = ["CLIPModel", "ContextLengthError", "available_models", "load", "tokenize"]

_PROBE_TEXTS = ("a photo of a dog.", "A Diagram, of 3 CATS & 2 dogs!")


class ContextLengthError(ClipbenchError, RuntimeError):
    """A text is longer than the context length (OpenAI's tokenizer raises ``RuntimeError`` here)."""


def available_models() -> list[str]:
    """Names ``load`` accepts without a path or backend prefix: OpenAI's nine, then clipbench's own."""
    return list(MODELS.names())


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH, truncate: bool = False) -> torch.Tensor:
    """Texts -> IntTensor (int32) [N, context_length] of CLIP BPE ids: the ids and dtype of OpenAI's
    ``clip.tokenize`` (clipbench's own ``tokenize`` gives int64; ``encode_text`` takes either)."""
    try:
        return _clip_tokenize(texts, context_length=context_length, truncate=truncate).to(torch.int32)
    except ClipbenchError as exc:
        if "longer than the context length" in str(exc):
            raise ContextLengthError(str(exc)) from exc
        raise


class CLIPModel(nn.Module):
    """One clipbench model with the methods and attributes scripts written for OpenAI's ``CLIP`` use.

    The backend's torch module is the only child, so ``.to``, ``.eval``, ``.parameters()`` and
    ``.half()`` act on the real weights. ``state_dict``/``load_state_dict`` use the backend
    module's own key names (OpenAI's, for native checkpoints), and attributes the wrapper does not
    define (``transformer``, ``token_embedding``, ``ln_final``, ...) are the backend module's.
    """

    def __init__(self, backend: ImageTextModel) -> None:
        super().__init__()
        self.inner = backend.module
        self.backend = backend
        self.name = backend.name
        self._image, self._text = _raw_encoders(backend)
        self.tokenizer_matches_clip = _tokenizer_matches_clip(backend)
        visual = self.visual
        if not isinstance(getattr(visual, "input_resolution", None), int):
            visual.input_resolution = int(backend.image_resolution)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("inner")
            if inner is None or name.startswith("__"):
                raise
            return getattr(inner, name)

    def __repr__(self) -> str:
        return f"CLIPModel(name={self.name!r}, backend={type(self.backend).__name__}, device={str(self.device)!r})"

    # --- attributes scripts read ------------------------------------------------------------
    @property
    def visual(self) -> nn.Module:
        inner = self.inner
        for attr in ("visual", "vision_model"):  # native and open_clip; Hugging Face
            module = inner._modules.get(attr)
            if module is not None:
                return module
        raise AttributeError(f"{self.name}: the backend module has no image tower attribute")

    @property
    def context_length(self) -> int:
        return int(self.backend.context_length)

    @property
    def vocab_size(self) -> int:
        config = getattr(self.backend, "config", None)
        if config is not None and hasattr(config, "vocab_size"):
            return int(config.vocab_size)
        text_config = getattr(getattr(self.inner, "config", None), "text_config", None)
        if text_config is not None:
            return int(text_config.vocab_size)
        value = getattr(self.inner, "vocab_size", None)
        if value is not None:
            return int(value)
        return int(self.inner.token_embedding.num_embeddings)

    @property
    def dtype(self) -> torch.dtype:
        """The image tower's weight dtype (what OpenAI's ``model.dtype`` reports)."""
        for param in self.visual.parameters():
            if param.is_floating_point():
                return param.dtype
        return torch.float32

    @property
    def device(self) -> torch.device:
        return next(self.inner.parameters()).device

    # --- computation ------------------------------------------------------------------------
    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Token ids from this model's own tokenizer (differs from ``clip.tokenize`` for some backends)."""
        return self.backend.tokenize(texts)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Preprocessed images [N, 3, H, W] -> image embeddings [N, D] (not normalised)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ClipbenchError(f"{self.name}: expected images of shape [N, 3, H, W], got {tuple(image.shape)}")
        return self._image(image.to(self.device))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Token ids [N, L] (from ``clip.tokenize``) -> text embeddings [N, D] (not normalised)."""
        if text.ndim != 2 or text.shape[1] > self.context_length:
            raise ClipbenchError(
                f"{self.name}: expected token ids of shape [N, <= {self.context_length}], got {tuple(text.shape)}"
            )
        return self._text(text.to(self.device, torch.long))

    @property
    def logit_scale(self) -> torch.Tensor:
        """The checkpoint's learned log-temperature (``exp`` of it is 100 for OpenAI's models)."""
        return self.inner.logit_scale

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits_per_image [N_img, N_txt], logits_per_text [N_txt, N_img]): scaled cosine similarities."""
        image_features = F.normalize(self.encode_image(image), dim=-1)
        text_features = F.normalize(self.encode_text(text), dim=-1)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        bias = getattr(self.inner, "logit_bias", None)  # SigLIP-style open_clip models
        if isinstance(bias, torch.Tensor):
            logits_per_image = logits_per_image + bias
        return logits_per_image, logits_per_image.t()

    # --- checkpoints in the backend's own key names -----------------------------------------
    def state_dict(self, *args, **kwargs):
        return self.inner.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.inner.load_state_dict(state_dict, strict=strict, assign=assign)


def _raw_encoders(backend: ImageTextModel) -> tuple[Callable, Callable]:
    """The backend module's encoders called directly (autograd on), not the inference-mode wrappers."""
    module = backend.module
    if isinstance(backend, NativeClipModel) or (hasattr(module, "encode_image") and hasattr(module, "encode_text")):
        return module.encode_image, module.encode_text  # clipbench's CLIP and open_clip's CLIP
    if hasattr(module, "vision_model") and hasattr(module, "visual_projection"):  # transformers' CLIPModel
        def image(pixels: torch.Tensor) -> torch.Tensor:
            return module.visual_projection(module.vision_model(pixel_values=pixels).pooler_output)

        def text(tokens: torch.Tensor) -> torch.Tensor:
            return module.text_projection(module.text_model(input_ids=tokens).pooler_output)

        return image, text
    # an unknown backend: its inference-mode encoders, cloned into ordinary tensors
    return (lambda x: backend.encode_image(x).clone()), (lambda t: backend.encode_text(t).clone())


def _through_eot(row: torch.Tensor, eot: int) -> list[int]:
    ids = row.tolist()
    return ids[: ids.index(eot) + 1] if eot in ids else ids


def _tokenizer_matches_clip(backend: ImageTextModel) -> bool:
    """Whether ``clip.tokenize`` gives this model's token ids (compared up to end-of-text; padding may differ)."""
    if isinstance(backend, NativeClipModel):
        return True
    try:
        own = backend.tokenize(list(_PROBE_TEXTS))
        ours = _clip_tokenize(list(_PROBE_TEXTS), context_length=int(own.shape[1]), truncate=True)
    except Exception as exc:  # a foreign tokenizer failing on the probe texts: certainly not CLIP's
        log.debug("tokenizer probe of %s failed: %s", backend.name, exc)
        return False
    eot = int(ours[0].max())
    same = all(_through_eot(a, eot) == _through_eot(b, eot) for a, b in zip(own, ours, strict=True))
    if not same:
        log.warning("%s does not use CLIP's tokenizer: tokenize texts with model.tokenize(...), not clip.tokenize",
                    backend.name)
    return same


def _openai_layout_file(name: str, download_root: Path) -> Path | None:
    """``<download_root>/<file>`` of a registered downloadable checkpoint, if OpenAI's ``clip`` left it there."""
    if name not in MODELS:
        return None
    info = MODELS.get(name)
    if info.url is None:
        return None
    path = download_root / info.filename
    return path if path.is_file() else None


def load(
    name: str | os.PathLike,
    device: str | torch.device | None = None,
    jit: bool = False,
    download_root: str | os.PathLike | None = None,
) -> tuple[CLIPModel, Callable[[Image.Image], torch.Tensor]]:
    """A model name, checkpoint path or clipbench model spec -> (model in eval mode on ``device``, preprocess).

    ``device`` defaults to CUDA when available. ``jit=True`` is accepted and returns the eager
    model (clipbench has no TorchScript path). ``download_root`` is used as the cache directory.
    """
    device = torch_env.default_device() if device is None else device
    if jit:
        log.warning("clipbench.clip.load(jit=True): clipbench has no TorchScript models; returning the eager model "
                    "(same numbers)")
    spec = os.fspath(name)
    root = Path(download_root).expanduser() if download_root is not None else None
    backend: ImageTextModel | None = None
    if root is not None:
        existing = _openai_layout_file(spec.strip(), root)
        if existing is not None:
            info = MODELS.get(spec.strip())
            if is_verified(existing, info.sha256):
                backend = load_checkpoint_file(existing, name=info.name, sha256=info.sha256, device=device)
            else:
                log.warning("%s does not have the SHA-256 of %s; using clipbench's cache instead", existing, info.name)
    if backend is None:
        backend = load_model(spec, device=device, cache_dir=root)
    model = CLIPModel(backend).eval()
    return model, backend.preprocess
