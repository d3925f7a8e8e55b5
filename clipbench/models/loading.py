"""``load_model``: one spec string -> a ready ``ImageTextModel``.

A spec is, in this order:
  1. a backend spec ``PREFIX:REST`` whose prefix is in ``BACKENDS`` (``openclip:``, ``hf:``),
     handed whole to that backend's loader (imported only when used);
  2. a registered checkpoint name or alias (``ViT-B/16``, ``vit-b-16``, ``RN50``, ...);
  3. a local file: an OpenAI TorchScript archive or a ``torch.save``d state dict (optionally
     wrapped as ``{"state_dict": ...}``).
Anything else is an ``UnknownNameError`` listing the closest registered names.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from clipbench.foundations import torch_env
from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ChecksumError, ClipbenchError, UnknownNameError
from clipbench.foundations.fileio import sha256_file
from clipbench.models.base import ImageTextModel
from clipbench.models.checkpoint_file import file_sha256, read_state_dict
from clipbench.models.checkpoints import CheckpointInfo
from clipbench.models.description import DescribedModel, recall, remember
from clipbench.models.download import fetch
from clipbench.models.registry import MODELS

if TYPE_CHECKING:  # torch loads when a model is built; a described one (``lazy``) is served without it
    import torch

    from clipbench.models.native import NativeClipModel

log = logging.getLogger(__name__)

#: spec prefix -> "module:function" taking (spec, device, cache_dir, offline), spec including the prefix.
BACKENDS: dict[str, str] = {
    "openclip": "clipbench.models.backends.openclip:load_openclip",
    "hf": "clipbench.models.backends.hf:load_hf",
}

_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")


def _backend_loader(prefix: str):
    module_name, _, function = BACKENDS[prefix].partition(":")
    return getattr(importlib.import_module(module_name), function)


def load_checkpoint_file(
    path: str | os.PathLike, name: str | None = None, sha256: str | None = None, device: str | torch.device = "cpu"
) -> NativeClipModel:
    """Build the native model from a checkpoint file; ``sha256`` if already known (else the file is hashed)."""
    from clipbench.models.build import build_model
    from clipbench.models.native import NativeClipModel

    path = Path(path)
    module = build_model(read_state_dict(path), source=str(path))
    model = NativeClipModel(module, name=name or str(path), weights_sha256=sha256 or sha256_file(path))
    target = _device(device)
    try:
        return model.to(target)
    except (RuntimeError, AssertionError) as exc:  # e.g. "Torch not compiled with CUDA enabled"
        raise ClipbenchError(f"cannot put {model.name} on device {target}: {str(exc).splitlines()[0]}") from exc


def _device(device: str | torch.device) -> torch.device:
    import torch

    return torch.device(torch_env.parse_device(device))


def checkpoint_path(
    info: CheckpointInfo, cache_dir: str | os.PathLike | None = None, offline: bool | None = None,
    verify: bool = False,
) -> Path:
    """Local, SHA-256-verified file of a registered checkpoint (downloading it if allowed and needed);
    ``verify``: a packaged file's bytes are read, not vouched for by the manifest rule."""
    if info.url is not None:
        return fetch(info.url, info.sha256, filename=info.filename, cache_dir=cache_dir, offline=offline)
    path = info.package_path()
    if not path.is_file():
        raise ClipbenchError(f"packaged checkpoint {info.name!r} is missing from the installation: {path}")
    if file_sha256(path, cache_dir, verify) != info.sha256:
        raise ChecksumError(f"packaged checkpoint {path} does not have SHA-256 {info.sha256}; reinstall clipbench")
    return path


def _native(path: Path, name: str, sha256: str, device: str | torch.device, cache_dir: str | os.PathLike | None,
            lazy: bool) -> ImageTextModel:
    """The native model of ``path`` (whose bytes have ``sha256``); described, if ``lazy`` and it was loaded before."""
    models_dir = Paths.resolve(cache_dir=cache_dir).models_dir
    description = recall(models_dir, sha256) if lazy else None
    if description is not None:
        return DescribedModel(description, name, str(device),
                              lambda target: load_checkpoint_file(path, name=name, sha256=sha256, device=target))
    model = load_checkpoint_file(path, name=name, sha256=sha256, device=device)
    if lazy:
        remember(models_dir, model)
    return model


def load_model(
    spec: str | os.PathLike,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike | None = None,
    offline: bool = False,
    lazy: bool = False,
    verify_data: bool = False,
) -> ImageTextModel:
    """A registered name/alias, a local checkpoint file or a backend spec -> model on ``device``.

    ``lazy``: a native checkpoint loaded before (same SHA-256) comes back as a ``DescribedModel``, built
    on first use (``clipbench.models.description``); the engine asks for this, so that a run served
    from the caches reads neither the checkpoint's tensors nor torch. A local file's SHA-256 is remembered by
    the manifest rule (``file_sha256``); ``verify_data`` (``--verify-data``) hashes its bytes every time.
    """
    text = os.fspath(spec).strip()
    if not text:
        raise ClipbenchError("empty model spec")
    prefix, colon, _ = text.partition(":")
    if colon and prefix.lower() in BACKENDS:
        return _backend_loader(prefix.lower())(text, device=device, cache_dir=cache_dir, offline=offline)
    if text in MODELS:
        info = MODELS.get(text)
        path = checkpoint_path(info, cache_dir=cache_dir, offline=offline, verify=verify_data)
        log.info("loading %s from %s", info.name, path)
        return _native(path, info.name, info.sha256, device, cache_dir, lazy)
    path = Path(text).expanduser()
    if path.is_file():
        return _native(path, str(path), file_sha256(path, cache_dir, verify_data), device, cache_dir, lazy)
    if path.is_dir():
        raise ClipbenchError(f"{path} is a directory; expected a checkpoint file or a registered model name")
    if text.lower().endswith(_CHECKPOINT_SUFFIXES) or text.startswith((".", "~", os.sep)):
        raise ClipbenchError(f"checkpoint file {path} does not exist")
    if colon:
        known = ", ".join(f"{p}:" for p in BACKENDS)
        raise UnknownNameError(f"unknown model backend {prefix!r} in {text!r} (known prefixes: {known})")
    MODELS.canonical(text)  # raises UnknownNameError with the closest names
    raise AssertionError("unreachable")  # pragma: no cover
