"""open_clip models (LAION, DataComp, OpenAI re-hosts) behind clipbench's ``ImageTextModel``.

Spec syntax (after the ``openclip:`` prefix):

    ARCH/TAG     an open_clip architecture and one of its pretrained tags,
                 e.g. ``ViT-B-16/laion2b_s34b_b88k``; weights go to ``<cache>/openclip``.
    ARCH@PATH    an open_clip architecture and a local checkpoint file (state dict with
                 open_clip or OpenAI key names, safetensors, or an OpenAI TorchScript archive),
                 e.g. ``ViT-B-16-quickgelu@/models/finetuned.pt``. ARCH may be the path of an
                 open_clip model config JSON (``/models/my-arch.json@/models/ckpt.pt``): it is
                 registered under its file name, so a text tower and tokenizer in a local folder
                 (``"hf_model_name": "/models/xlmr"``) load offline.

A bare ``ARCH`` is refused: random weights are never what a benchmark wants, and silently
evaluating them would produce plausible-looking garbage.

QuickGELU: OpenAI-trained weights (tag ``openai`` and a few others) need QuickGELU activations,
which open_clip's plain arch names (``ViT-B-16``) do not use. For a tag we take the activation
from open_clip's pretrained table, so ``ViT-B-16/openai`` is right; for a local file the arch
name decides, so OpenAI-trained files need the ``-quickgelu`` arch (``ViT-B-16-quickgelu@...``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from clipbench.foundations.config import resolve_cache_dir, resolve_offline
from clipbench.foundations.errors import ChecksumError, ClipbenchError, OfflineError
from clipbench.foundations.fileio import sha256_file
from clipbench.models.backends import count_params, require_extra, tokenizer_identity
from clipbench.models.base import ImageTextModel
from clipbench.models.checkpoint_file import file_sha256, is_torchscript, load_failure_reason

log = logging.getLogger(__name__)

PREFIX = "openclip:"


def parse_spec(spec: str) -> tuple[str, str | None, Path | None]:
    """``ARCH/TAG`` or ``ARCH@PATH`` (prefix optional) -> (arch, tag, path)."""
    body = spec[len(PREFIX):] if spec.lower().startswith(PREFIX) else spec
    if "@" in body:
        arch, _, path = body.partition("@")
        if not arch or not path:
            raise ClipbenchError(f"bad open_clip spec {spec!r}: expected openclip:ARCH@/path/to/checkpoint")
        return arch.strip(), None, Path(path).expanduser()
    if "/" in body:
        arch, _, tag = body.rpartition("/")
        if arch and tag:
            return arch.strip(), tag.strip(), None
    raise ClipbenchError(
        f"bad open_clip spec {spec!r}: expected openclip:ARCH/TAG (pretrained tag, e.g. "
        "openclip:ViT-B-16/laion2b_s34b_b88k) or openclip:ARCH@/path/to/checkpoint"
    )


def _check_arch(open_clip, arch: str, spec: str) -> str:
    if arch.lower().endswith(".json"):  # a model config of one's own (e.g. an HF text tower in a local folder)
        config = Path(arch).expanduser()
        if not config.is_file():
            raise ClipbenchError(f"open_clip model config not found: {config} (from {spec!r})")
        open_clip.add_model_config(config)  # registered under the file's stem, as open_clip does
        arch = config.stem
    arch = arch.replace("/", "-")
    if open_clip.get_model_config(arch) is None:
        import difflib

        close = difflib.get_close_matches(arch, open_clip.list_models(), n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see open_clip.list_models()"
        raise ClipbenchError(f"unknown open_clip architecture {arch!r} in {spec!r}{hint}")
    return arch


def _cached_checkpoint(pcfg: dict, cache_dir: Path) -> Path | None:
    """Where open_clip would have put the weights of a tag, if they are already there (no network)."""
    hub = pcfg.get("hf_hub") or ""
    if hub:
        from open_clip import pretrained as oc_pretrained

        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub comes with open_clip
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            if hub.endswith("/"):  # open_clip's convention: repo id only, default weights file name
                repo_id, filename = hub.rstrip("/"), oc_pretrained.HF_WEIGHTS_NAME
            else:
                repo_id, filename = os.path.split(hub)
            names = [*oc_pretrained._get_safe_alternatives(filename), filename]
            for name in names:
                found = try_to_load_from_cache(repo_id, name, cache_dir=str(cache_dir))
                if isinstance(found, str) and os.path.isfile(found):
                    return Path(found)
    url = pcfg.get("url") or ""
    if url:
        target = cache_dir / os.path.basename(url)
        if target.is_file():
            expected = url.split("/")[-2] if "openaipublic" in url else ""
            if expected and not sha256_file(target).startswith(expected):
                raise ChecksumError(f"{target} does not have the expected SHA-256 {expected}; delete it and download again")
            return target
    return None


def _resolve_tag(open_clip, arch: str, tag: str, cache_dir: Path, offline: bool, spec: str) -> tuple[Path, dict]:
    pcfg = open_clip.get_pretrained_cfg(arch, tag)
    if not pcfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ClipbenchError(
            f"open_clip has no pretrained tag {tag!r} for {arch!r} in {spec!r}; "
            f"known tags: {', '.join(tags) if tags else 'none'}"
        )
    if "file" in pcfg:
        return Path(pcfg["file"]), pcfg
    cached = _cached_checkpoint(pcfg, cache_dir)
    if cached is not None:
        return cached, pcfg
    if offline:
        raise OfflineError(
            f"weights for {spec!r} are not in {cache_dir} and offline mode forbids downloading them; "
            "run once online, or pass a local file as openclip:ARCH@/path/to/checkpoint"
        )
    from open_clip import pretrained as oc_pretrained

    try:
        path = oc_pretrained.download_pretrained(pcfg, cache_dir=str(cache_dir))
    except Exception as exc:  # network and hub errors come in many types; all mean "could not fetch"
        raise ClipbenchError(f"could not download weights for {spec!r}: {type(exc).__name__}: {exc}") from exc
    if not path:
        raise ClipbenchError(f"open_clip knows no download location for {spec!r}")
    return Path(path), pcfg


def _build(open_clip, arch: str, checkpoint: Path, quick_gelu: bool, preprocess_cfg: dict, spec: str):
    """Create the open_clip model with the checkpoint's weights; key mismatches become one line."""
    kwargs = {"force_quick_gelu": quick_gelu, **{f"image_{k}": v for k, v in preprocess_cfg.items()}}
    try:
        if is_torchscript(checkpoint):
            state = torch.jit.load(str(checkpoint), map_location="cpu").state_dict()
            for key in ("input_resolution", "context_length", "vocab_size"):
                state.pop(key, None)
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, **kwargs)
            model.load_state_dict(state, strict=True)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(checkpoint), **kwargs)
    except (RuntimeError, KeyError, ValueError, OSError, zipfile.BadZipFile, pickle.UnpicklingError) as exc:
        # torch's refusal of a pickle that is not plain tensors spans many lines of advice: keep its cause
        raise ClipbenchError(
            f"checkpoint {checkpoint} does not load into open_clip architecture {arch!r} ({spec!r}): "
            f"{load_failure_reason(exc)[:300]}"
        ) from exc
    model.eval()
    return model, preprocess


def _family(visual: torch.nn.Module) -> str:
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    if isinstance(visual, ModifiedResNet):
        return "ResNet"
    if isinstance(visual, VisionTransformer):
        return "ViT"
    inner = getattr(visual, "trunk", None)  # timm towers
    name = type(inner).__name__.lower() if inner is not None else ""
    if "visiontransformer" in name or name.startswith("vit"):
        return "ViT"
    if "resnet" in name:
        return "ResNet"
    return "other"


@contextlib.contextmanager
def _without_projection(visual: torch.nn.Module) -> Iterator[None]:
    """Make the image tower return pre-projection features for one call, as the native model defines them.

    open_clip applies the final projection inside ``forward()``: ViT's ``proj`` (set to None here)
    and the ResNet attention pool's output projection ``c_proj`` (swapped for an exact identity).
    Other towers have no separate projection and are left as they are.
    """
    proj = getattr(visual, "proj", None)
    attnpool = getattr(visual, "attnpool", None)
    if isinstance(proj, torch.Tensor):
        visual.proj = None
        try:
            yield
        finally:
            visual.proj = proj
    elif attnpool is not None and isinstance(getattr(attnpool, "c_proj", None), torch.nn.Linear):
        c_proj = attnpool.c_proj
        width = c_proj.in_features
        identity = torch.nn.Linear(width, width).to(c_proj.weight.device, c_proj.weight.dtype)
        with torch.no_grad():
            identity.weight.copy_(torch.eye(width))
            identity.bias.zero_()
        attnpool.c_proj = identity
        try:
            yield
        finally:
            attnpool.c_proj = c_proj
    else:
        yield


class OpenClipModel(ImageTextModel):
    """An open_clip ``CLIP`` module plus its tokenizer and eval transform."""

    def __init__(self, name: str, arch: str, module, preprocess, tokenizer, weights_sha256: str, quick_gelu: bool):
        self.name = name
        self.arch = arch
        self.module = module
        self.preprocess = preprocess
        self._tokenizer = tokenizer
        self.weights_sha256 = weights_sha256
        self.quick_gelu = quick_gelu
        visual = module.visual
        size = getattr(visual, "image_size", None) or module.visual.preprocess_cfg["size"]
        self.image_resolution = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.embed_dim = int(getattr(visual, "output_dim", 0) or module.text_projection.shape[-1])
        self.context_length = int(getattr(module, "context_length", 77))
        self.family = _family(visual)
        self._preprocess_cfg = dict(getattr(visual, "preprocess_cfg", {}) or {})

    @property
    def identity(self) -> str:
        act = "quickgelu" if self.quick_gelu else "gelu"
        return f"openclip:{self.arch}:{act}:{self.weights_sha256}"

    @property
    def tokenizer_id(self) -> str:
        return tokenizer_identity(self._tokenizer, self.context_length)

    @property
    def preprocess_id(self) -> str:
        return "openclip:" + json.dumps(self._preprocess_cfg, sort_keys=True, default=str, separators=(",", ":"))

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self._tokenizer(texts).long()

    @torch.inference_mode()
    def encode_image(self, images: torch.Tensor, projected: bool = True) -> torch.Tensor:
        images = images.to(self.device)
        if projected:
            return self.module.visual(images)
        with _without_projection(self.module.visual):
            return self.module.visual(images)

    @torch.inference_mode()
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.module.encode_text(tokens.to(self.device))

    def num_params(self) -> dict[str, int]:
        total = count_params(self.module)
        image = count_params(self.module.visual)
        text = total - image - sum(p.numel() for n, p in self.module.named_parameters() if n.startswith("logit_"))
        return {"image": image, "text": text, "total": total}


def load_openclip(
    spec: str, device: str | torch.device = "cpu", cache_dir: str | os.PathLike | None = None, offline: bool = False
) -> OpenClipModel:
    """Load ``openclip:ARCH/TAG`` or ``openclip:ARCH@PATH`` (the prefix is optional here)."""
    full = spec if spec.lower().startswith(PREFIX) else PREFIX + spec
    arch, tag, path = parse_spec(full)
    open_clip = require_extra("open_clip", "openclip", full)
    arch = _check_arch(open_clip, arch, full)
    offline = resolve_offline(offline)
    oc_cache = resolve_cache_dir(cache_dir) / "openclip"
    quick_gelu = bool(open_clip.get_model_config(arch).get("quick_gelu", False))
    preprocess_cfg: dict = {}
    if tag is not None:
        checkpoint, pcfg = _resolve_tag(open_clip, arch, tag, oc_cache, offline, full)
        quick_gelu = quick_gelu or bool(pcfg.get("quick_gelu", False))
        preprocess_cfg = {k: pcfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if pcfg.get(k)}
        name = f"{PREFIX}{arch}/{tag}"
    else:
        if not path.is_file():
            raise ClipbenchError(f"checkpoint file not found: {path} (from {full!r})")
        checkpoint = path
        name = f"{PREFIX}{arch}@{path}"
    log.info("loading %s from %s (quick_gelu=%s)", name, checkpoint, quick_gelu)
    module, preprocess = _build(open_clip, arch, checkpoint, quick_gelu, preprocess_cfg, full)
    tokenizer = open_clip.get_tokenizer(arch, cache_dir=str(oc_cache))
    model = OpenClipModel(name, arch, module, preprocess, tokenizer, file_sha256(checkpoint, cache_dir), quick_gelu)
    return model.to(device)
