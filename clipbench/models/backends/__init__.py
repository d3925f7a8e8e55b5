"""Optional model backends: other libraries' CLIP models behind the same ``ImageTextModel`` interface.

``clipbench.load_model("openclip:...")`` and ``load_model("hf:...")`` import these lazily, so the
extras (``clipbench[openclip]``, ``clipbench[hf]``) are needed only by people who use them.
Shared helpers live here: importing an extra with a one-line install hint, hashing tensors, and
telling a ResNet image tower from a ViT.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterable
from types import ModuleType

import torch

from clipbench.foundations.errors import ClipbenchError


def require_extra(module: str, extra: str, spec: str) -> ModuleType:
    """Import ``module`` or fail with the pip command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ClipbenchError(
            f"model {spec!r} needs the optional package {module!r} ({exc}); "
            f"install it with: pip install 'clipbench[{extra}]'"
        ) from exc


def sha256_tensors(named: Iterable[tuple[str, torch.Tensor]], extra: str = "") -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of tensors, in name order.

    Used where weights do not come from one file we can hash (hub snapshots, sharded files).
    ``extra`` carries configuration that changes the numbers (activation, eps) into the hash.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(named, key=lambda item: item[0]):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(extra.encode())
    return digest.hexdigest()


def count_params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def tokenizer_identity(tokenizer, context_length: int) -> str:
    """A name for a backend's own tokenizer that changes whenever its token ids can: a Hugging Face tokenizer (or
    open_clip's ``HFTokenizer`` around one) by the SHA-256 of its full serialisation (vocabulary, merges or
    SentencePiece pieces, normaliser, special tokens), anything else by its class (open_clip's CLIP BPE)."""
    inner = getattr(tokenizer, "tokenizer", tokenizer)  # open_clip's HFTokenizer wraps a transformers tokenizer
    context_length = getattr(tokenizer, "context_length", None) or context_length  # open_clip's pads to its own
    backend = getattr(inner, "backend_tokenizer", None)
    if backend is not None:  # a fast tokenizer: its tokenizer.json says everything
        payload = backend.to_str()
    elif hasattr(inner, "get_vocab"):  # a slow (Python) tokenizer: its vocabulary and special tokens
        payload = json.dumps([sorted(inner.get_vocab().items()), str(getattr(inner, "special_tokens_map", {}))],
                             ensure_ascii=False)
    else:
        return f"{type(tokenizer).__module__}.{type(tokenizer).__name__}:{context_length}"
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
    return f"hf-{type(inner).__name__}:{digest}:{context_length}"
