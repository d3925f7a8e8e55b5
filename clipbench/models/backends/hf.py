"""Hugging Face ``transformers`` CLIP models behind clipbench's ``ImageTextModel``.

Spec: ``hf:REPO_OR_PATH``: a hub repo id (``hf:openai/clip-vit-base-patch16``, downloaded into
``<cache>/hf``) or a local directory written by ``save_pretrained`` (works offline).

Pitfalls handled here:
- Tokenizer: padded to the model's context length (77) and truncated like CLIP's own tokenizer;
  the text tower pools at the end-of-text token (transformers picks argmax-of-ids pooling for old
  configs with ``eos_token_id == 2`` and first-EOS pooling otherwise; both find the same token
  with CLIP's vocabulary, where end-of-text has the largest id).
- Preprocessing: the values of the repo's ``CLIPImageProcessor`` (shortest-side bicubic resize
  with PIL, center crop with the crop origin rounded down as transformers does, normalise) as a
  torchvision transform, so it runs in DataLoader workers like every other model's.

``openai_state_dict_from_hf`` converts CLIPModel weights to OpenAI key names, so an HF checkpoint
can also run through clipbench's native architecture (QuickGELU models only; that is what the
native architecture implements).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from clipbench.foundations.config import resolve_cache_dir, resolve_offline
from clipbench.foundations.errors import ClipbenchError, OfflineError
from clipbench.foundations.images import to_rgb
from clipbench.models.backends import count_params, require_extra, sha256_tensors, tokenizer_identity
from clipbench.models.base import ImageTextModel

log = logging.getLogger(__name__)

PREFIX = "hf:"
_PIL_RESAMPLE = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC,
                 1: InterpolationMode.LANCZOS, 4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING}
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class CenterCropFloor:
    """Center crop whose origin is ``(size_in - size_out) // 2``, as transformers' center_crop does.

    torchvision's CenterCrop rounds the origin instead, which shifts the crop by one pixel for
    some input sizes; matching the processor exactly keeps HF-backend numbers equal to HF's own.
    """

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        if w < self.width or h < self.height:  # the resize step makes this rare; pad like torchvision
            return T.CenterCrop((self.height, self.width))(img)
        top, left = (h - self.height) // 2, (w - self.width) // 2
        return img.crop((left, top, left + self.width, top + self.height))

    def __repr__(self) -> str:
        return f"CenterCropFloor({self.height}x{self.width})"


def _processor_values(cfg: dict, image_size: int) -> dict:
    """The numbers a CLIPImageProcessor config implies, with CLIP's defaults for missing keys."""
    size = cfg.get("size", {"shortest_edge": image_size})
    if isinstance(size, int):
        size = {"shortest_edge": size}
    crop = cfg.get("crop_size", {"height": image_size, "width": image_size})
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    return {
        "do_resize": cfg.get("do_resize", True),
        "shortest_edge": size.get("shortest_edge") or min(size.get("height", image_size), size.get("width", image_size)),
        "resample": int(cfg.get("resample", 3)),
        "do_center_crop": cfg.get("do_center_crop", True),
        "crop": (int(crop["height"]), int(crop["width"])),
        "rescale_factor": float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0,
        "do_normalize": cfg.get("do_normalize", True),
        "mean": tuple(cfg.get("image_mean") or _OPENAI_MEAN),
        "std": tuple(cfg.get("image_std") or _OPENAI_STD),
    }


class _Rescale:
    """uint8 tensor -> float tensor times a factor (1/255 for every CLIP processor we know)."""

    def __init__(self, factor: float):
        self.factor = factor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.factor

    def __repr__(self) -> str:
        return f"Rescale({self.factor})"


def build_preprocess(values: dict) -> T.Compose:
    """torchvision pipeline equal to a CLIPImageProcessor with these values (PIL resize, floor crop)."""
    steps: list = [to_rgb]
    if values["do_resize"]:
        interp = _PIL_RESAMPLE.get(values["resample"], InterpolationMode.BICUBIC)
        steps.append(T.Resize(int(values["shortest_edge"]), interpolation=interp))
    if values["do_center_crop"]:
        steps.append(CenterCropFloor(*values["crop"]))
    steps.append(T.PILToTensor())
    steps.append(_Rescale(values["rescale_factor"]))
    if values["do_normalize"]:
        steps.append(T.Normalize(values["mean"], values["std"]))
    return T.Compose(steps)


def _read_processor_config(source: str, cache_dir: Path, local_only: bool) -> dict:
    """preprocessor_config.json as a dict ({} when the repo has none: CLIP defaults apply)."""
    local = Path(source) / "preprocessor_config.json"
    if local.is_file():
        return json.loads(local.read_text(encoding="utf-8"))
    if Path(source).is_dir():
        return {}
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(source, "preprocessor_config.json", cache_dir=str(cache_dir), local_files_only=local_only)
    except Exception as exc:  # missing file or no network: fall back to the CLIP defaults, say so
        log.warning("no preprocessor_config.json for %s (%s); using CLIP's default preprocessing", source, exc)
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _numerics_config(config) -> str:
    """The config fields that change features for the same weights (go into the identity)."""
    keep = {}
    for tower in ("text_config", "vision_config"):
        sub = getattr(config, tower)
        keep[tower] = {k: getattr(sub, k, None) for k in ("hidden_act", "layer_norm_eps", "eos_token_id", "image_size")}
    return json.dumps(keep, sort_keys=True, default=str)


class HFClipModel(ImageTextModel):
    """A transformers ``CLIPModel`` with its tokenizer and a torchvision copy of its processor."""

    def __init__(self, name: str, module, tokenizer, processor_values: dict, weights_sha256: str):
        self.name = name
        self.module = module
        self._tokenizer = tokenizer
        self._processor_values = processor_values
        self.preprocess = build_preprocess(processor_values)
        self.weights_sha256 = weights_sha256
        cfg = module.config
        self.family = "ViT"  # CLIPModel's image tower is always a ViT
        self.image_resolution = int(processor_values["crop"][0] if processor_values["do_center_crop"] else cfg.vision_config.image_size)
        self.embed_dim = int(cfg.projection_dim)
        self.context_length = int(cfg.text_config.max_position_embeddings)

    @property
    def identity(self) -> str:
        return f"hf:{self.weights_sha256}"

    @property
    def tokenizer_id(self) -> str:
        return tokenizer_identity(self._tokenizer, self.context_length)

    @property
    def preprocess_id(self) -> str:
        return "hf:" + json.dumps(self._processor_values, sort_keys=True, separators=(",", ":"))

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = self._tokenizer(texts, padding="max_length", max_length=self.context_length, truncation=True,
                              return_tensors="pt")
        return out["input_ids"].long()

    @torch.inference_mode()
    def encode_image(self, images: torch.Tensor, projected: bool = True) -> torch.Tensor:
        pooled = self.module.vision_model(pixel_values=images.to(self.device)).pooler_output
        return self.module.visual_projection(pooled) if projected else pooled

    @torch.inference_mode()
    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        # No attention mask: the text tower is causal, so padding after end-of-text cannot reach the
        # pooled end-of-text position (the same as OpenAI's CLIP, which has no padding mask either).
        pooled = self.module.text_model(input_ids=tokens.to(self.device)).pooler_output
        return self.module.text_projection(pooled)

    def num_params(self) -> dict[str, int]:
        image = count_params(self.module.vision_model) + count_params(self.module.visual_projection)
        text = count_params(self.module.text_model) + count_params(self.module.text_projection)
        return {"image": image, "text": text, "total": count_params(self.module)}


def load_hf(
    spec: str, device: str | torch.device = "cpu", cache_dir: str | os.PathLike | None = None, offline: bool = False
) -> HFClipModel:
    """Load ``hf:REPO_OR_PATH`` (the prefix is optional here)."""
    full = spec if spec.lower().startswith(PREFIX) else PREFIX + spec
    source = full[len(PREFIX):].strip()
    if not source:
        raise ClipbenchError(f"bad Hugging Face spec {spec!r}: expected hf:REPO_ID or hf:/path/to/saved_model")
    transformers = require_extra("transformers", "hf", full)
    offline = resolve_offline(offline)
    hf_cache = resolve_cache_dir(cache_dir) / "hf"
    local_dir = Path(source).expanduser()
    is_local = local_dir.is_dir()
    looks_like_path = source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source
    if not is_local and looks_like_path:
        raise ClipbenchError(f"model directory not found: {local_dir} (from {full!r})")
    where = str(local_dir) if is_local else source
    kwargs = {} if is_local else {"cache_dir": str(hf_cache), "local_files_only": offline}
    try:
        config = transformers.AutoConfig.from_pretrained(where, **kwargs)
    except OSError as exc:
        if offline and not is_local:
            raise OfflineError(
                f"{full!r} is not in {hf_cache} and offline mode forbids downloading it; "
                "run once online, or save the model locally and use hf:/path/to/dir"
            ) from exc
        raise ClipbenchError(f"cannot load Hugging Face model {full!r}: {str(exc).splitlines()[0][:300]}") from exc
    if getattr(config, "model_type", None) != "clip":
        raise ClipbenchError(
            f"{full!r} is a {getattr(config, 'model_type', '?')!r} model; the hf: backend runs CLIP models (model_type 'clip')"
        )
    try:
        module = transformers.CLIPModel.from_pretrained(where, **kwargs).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(where, **kwargs)
    except (OSError, ValueError) as exc:
        raise ClipbenchError(f"cannot load Hugging Face model {full!r}: {str(exc).splitlines()[0][:300]}") from exc
    values = _processor_values(_read_processor_config(where, hf_cache, offline or is_local), config.vision_config.image_size)
    sha = sha256_tensors(module.state_dict().items(), extra=_numerics_config(config))
    name = f"{PREFIX}{local_dir if is_local else source}"
    log.info("loaded %s (weights sha256 %s)", name, sha[:12])
    return HFClipModel(name, module, tokenizer, values, sha).to(device)


def openai_state_dict_from_hf(hf_state: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """CLIPModel weights -> OpenAI CLIP key names (ViT image tower), for the native architecture.

    Refuses configs the native architecture would compute differently (non-QuickGELU activation,
    layer-norm eps other than 1e-5) rather than converting into silently different numbers.
    """
    for tower in (config.text_config, config.vision_config):
        if tower.hidden_act != "quick_gelu":
            raise ClipbenchError(f"cannot convert: activation {tower.hidden_act!r}; native CLIP uses quick_gelu")
        if abs(tower.layer_norm_eps - 1e-5) > 1e-12:
            raise ClipbenchError(f"cannot convert: layer_norm_eps {tower.layer_norm_eps}; native CLIP uses 1e-5")
    out: dict[str, torch.Tensor] = {}

    def block(src: str, dst: str, n_layers: int) -> None:
        for i in range(n_layers):
            s, d = f"{src}.{i}", f"{dst}.{i}"
            out[f"{d}.attn.in_proj_weight"] = torch.cat([hf_state[f"{s}.self_attn.{p}_proj.weight"] for p in "qkv"])
            out[f"{d}.attn.in_proj_bias"] = torch.cat([hf_state[f"{s}.self_attn.{p}_proj.bias"] for p in "qkv"])
            for hf_name, oa_name in (("self_attn.out_proj", "attn.out_proj"), ("layer_norm1", "ln_1"),
                                     ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
                for kind in ("weight", "bias"):
                    out[f"{d}.{oa_name}.{kind}"] = hf_state[f"{s}.{hf_name}.{kind}"]

    def norm(src: str, dst: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = hf_state[f"{src}.weight"], hf_state[f"{src}.bias"]

    out["token_embedding.weight"] = hf_state["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = hf_state["text_model.embeddings.position_embedding.weight"]
    block("text_model.encoder.layers", "transformer.resblocks", config.text_config.num_hidden_layers)
    norm("text_model.final_layer_norm", "ln_final")
    out["text_projection"] = hf_state["text_projection.weight"].t().contiguous()
    out["visual.class_embedding"] = hf_state["vision_model.embeddings.class_embedding"]
    out["visual.conv1.weight"] = hf_state["vision_model.embeddings.patch_embedding.weight"]
    out["visual.positional_embedding"] = hf_state["vision_model.embeddings.position_embedding.weight"]
    norm("vision_model.pre_layrnorm", "visual.ln_pre")
    block("vision_model.encoder.layers", "visual.transformer.resblocks", config.vision_config.num_hidden_layers)
    norm("vision_model.post_layernorm", "visual.ln_post")
    out["visual.proj"] = hf_state["visual_projection.weight"].t().contiguous()
    out["logit_scale"] = hf_state["logit_scale"]
    return {k: v.detach().clone() for k, v in out.items()}
