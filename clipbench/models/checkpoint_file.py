"""A local checkpoint file: its format (TorchScript archive or state dict), its tensors, and its SHA-256.

The SHA-256 is the model's identity in every cache key and record. Reading a multi-GB file on every
run would cost more than a warm rerun's scoring, so it is remembered by the manifest rule that data
files follow (``clipbench.foundations.file_identity``: path, size, mtime, ctime, inode); ``verify``
(``--verify-data``) reads the bytes every time.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ClipbenchError
from clipbench.foundations.file_identity import cached_sha256


def file_sha256(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, verify: bool = False) -> str:
    """SHA-256 of a local checkpoint file, remembered under the cache's models folder by the manifest rule
    (``foundations.file_identity``): a rerun does not re-read an unchanged multi-GB file; ``verify`` reads it."""
    return cached_sha256(path, Paths.resolve(cache_dir=cache_dir).models_dir / "sha256", verify=verify)


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` tree and ``constants.pkl``; plain saves have neither."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())


def load_failure_reason(exc: Exception) -> str:
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
        if is_torchscript(path):
            return torch.jit.load(str(path), map_location="cpu").state_dict()
        # mmap: a multi-GB checkpoint is paged in from disk instead of being copied into memory first
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # torch raises many types for unreadable files; all mean "not loadable"
        reason = load_failure_reason(exc)
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
