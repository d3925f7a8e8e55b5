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
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ChecksumError, ClipbenchError, UnknownNameError
from clipbench.foundations.fileio import sha256_file
from clipbench.models.base import ImageTextModel
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


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` tree and ``constants.pkl``; plain saves have neither."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())


def _load_failure_reason(exc: Exception) -> str:
    """The informative line of a torch.load failure (its weights-only message wraps the real cause)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


def read_state_dict(path: str | os.PathLike) -> Mapping[str, object]:
    """The tensors of a checkpoint file, TorchScript or plain, loaded on CPU without running any pickle code."""
    import torch

    path = Path(path)
    try:
        if _is_torchscript(path):
            return torch.jit.load(str(path), map_location="cpu").state_dict()
        # mmap: a multi-GB checkpoint is paged in from disk instead of being copied into memory first
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # torch raises many types for unreadable files; all mean "not loadable"
        reason = _load_failure_reason(exc)
        if "Unsupported global" in reason:
            raise ClipbenchError(
                f"{path} holds Python objects other than tensors; only state dicts and TorchScript archives "
                f"are loaded ({reason})"
            ) from exc
        raise ClipbenchError(
            f"{path} is not a readable PyTorch checkpoint (expected a state dict or a TorchScript archive): {reason}"
        ) from exc
    if not isinstance(obj, Mapping):
        raise ClipbenchError(f"{path} contains a {type(obj).__name__}, expected a state dict (a mapping of tensors)")
    return obj


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

    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ClipbenchError(f"unknown device {device!r}: {exc}") from exc


def checkpoint_path(
    info: CheckpointInfo, cache_dir: str | os.PathLike | None = None, offline: bool | None = None
) -> Path:
    """Local, SHA-256-verified file of a registered checkpoint (downloading it if allowed and needed)."""
    if info.url is not None:
        return fetch(info.url, info.sha256, filename=info.filename, cache_dir=cache_dir, offline=offline)
    path = info.package_path()
    if not path.is_file():
        raise ClipbenchError(f"packaged checkpoint {info.name!r} is missing from the installation: {path}")
    if sha256_file(path) != info.sha256:
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
) -> ImageTextModel:
    """A registered name/alias, a local checkpoint file or a backend spec -> model on ``device``.

    ``lazy``: a native checkpoint loaded before (same SHA-256) comes back as a ``DescribedModel``, built
    on first use (``clipbench.models.description``); the engine asks for this, so that a run served
    from the caches reads neither the checkpoint's tensors nor torch.
    """
    text = os.fspath(spec).strip()
    if not text:
        raise ClipbenchError("empty model spec")
    prefix, colon, _ = text.partition(":")
    if colon and prefix.lower() in BACKENDS:
        return _backend_loader(prefix.lower())(text, device=device, cache_dir=cache_dir, offline=offline)
    if text in MODELS:
        info = MODELS.get(text)
        path = checkpoint_path(info, cache_dir=cache_dir, offline=offline)
        log.info("loading %s from %s", info.name, path)
        return _native(path, info.name, info.sha256, device, cache_dir, lazy)
    path = Path(text).expanduser()
    if path.is_file():
        return _native(path, str(path), sha256_file(path), device, cache_dir, lazy)
    if path.is_dir():
        raise ClipbenchError(f"{path} is a directory; expected a checkpoint file or a registered model name")
    if text.lower().endswith(_CHECKPOINT_SUFFIXES) or text.startswith((".", "~", os.sep)):
        raise ClipbenchError(f"checkpoint file {path} does not exist")
    if colon:
        known = ", ".join(f"{p}:" for p in BACKENDS)
        raise UnknownNameError(f"unknown model backend {prefix!r} in {text!r} (known prefixes: {known})")
    MODELS.canonical(text)  # raises UnknownNameError with the closest names
    raise AssertionError("unreachable")  # pragma: no cover
