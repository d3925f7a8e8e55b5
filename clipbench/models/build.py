"""OpenAI state dict -> ``CLIP`` module, with every hyperparameter read from the tensor shapes.

Nothing about the architecture is looked up by name: a checkpoint is self-describing, so a renamed
file or an unregistered fine-tune builds the right model. The one convention shapes cannot carry is
the number of attention heads; OpenAI always uses 64 channels per head, and so does this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from clipbench.foundations.errors import ClipbenchError
from clipbench.models.architecture import CLIP, ClipConfig

#: Keys OpenAI's TorchScript archives carry as attributes that are not weights.
_NON_WEIGHT_KEYS = ("input_resolution", "context_length", "vocab_size")

_TEXT_KEYS = (
    "token_embedding.weight",
    "positional_embedding",
    "ln_final.weight",
    "text_projection",
    "logit_scale",
    "transformer.resblocks.0.attn.in_proj_weight",
)
_VIT_KEYS = ("visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.proj")
_RESNET_KEYS = ("visual.conv1.weight", "visual.layer1.0.conv1.weight", "visual.attnpool.positional_embedding")


def _missing_message(source: str, missing: list[str]) -> str:
    shown = ", ".join(missing[:6]) + (f" (and {len(missing) - 6} more)" if len(missing) > 6 else "")
    return f"{source} is not an OpenAI CLIP state dict: missing keys {shown}"


def _block_indices(state_dict: Mapping[str, torch.Tensor], prefix: str) -> set[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}


def _count_blocks(state_dict: Mapping[str, torch.Tensor], prefix: str, source: str) -> int:
    indices = _block_indices(state_dict, prefix)
    if indices != set(range(len(indices))):
        raise ClipbenchError(f"{source}: blocks under {prefix}* are not numbered 0..N-1 ({sorted(indices)})")
    return len(indices)


def _square_side(tokens: int, what: str, source: str) -> int:
    side = round((tokens - 1) ** 0.5)
    if side * side + 1 != tokens:
        raise ClipbenchError(f"{source}: {what} has {tokens} positions, expected a square grid plus one")
    return side


def infer_config(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> ClipConfig:
    """Read every CLIP hyperparameter off the shapes in ``state_dict``; ``source`` names it in errors."""
    if "visual.proj" in state_dict:
        missing = [k for k in _VIT_KEYS if k not in state_dict]
    elif any(k.startswith("visual.attnpool.") for k in state_dict):
        missing = [k for k in _RESNET_KEYS if k not in state_dict]
    else:
        missing = ["visual.proj (ViT) or visual.attnpool.* (ResNet)"]
    missing += [k for k in _TEXT_KEYS if k not in state_dict]
    if missing:
        raise ClipbenchError(_missing_message(source, missing))

    text_width = state_dict["ln_final.weight"].shape[0]
    common = dict(
        embed_dim=state_dict["text_projection"].shape[1],
        context_length=state_dict["positional_embedding"].shape[0],
        vocab_size=state_dict["token_embedding.weight"].shape[0],
        transformer_width=text_width,
        transformer_heads=text_width // 64,
        transformer_layers=_count_blocks(state_dict, "transformer.resblocks.", source),
    )
    if "visual.proj" in state_dict:
        conv = state_dict["visual.conv1.weight"]  # [width, 3, patch, patch]
        patch = conv.shape[-1]
        grid = _square_side(state_dict["visual.positional_embedding"].shape[0], "visual.positional_embedding", source)
        return ClipConfig(
            image_resolution=patch * grid,
            vision_layers=_count_blocks(state_dict, "visual.transformer.resblocks.", source),
            vision_width=conv.shape[0],
            vision_patch_size=patch,
            **common,
        )
    stages = tuple(_count_blocks(state_dict, f"visual.layer{i}.", source) for i in (1, 2, 3, 4))
    grid = _square_side(
        state_dict["visual.attnpool.positional_embedding"].shape[0], "visual.attnpool.positional_embedding", source
    )
    return ClipConfig(
        image_resolution=grid * 32,
        vision_layers=stages,  # type: ignore[arg-type]
        vision_width=state_dict["visual.layer1.0.conv1.weight"].shape[0],
        vision_patch_size=None,
        **common,
    )


def clean_state_dict(state_dict: Mapping[str, object], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Unwrap {"state_dict": ...}, strip a DataParallel "module." prefix, drop non-weight keys, cast to fp32."""
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        state_dict = state_dict["state_dict"]  # type: ignore[assignment]
    if state_dict and all(isinstance(k, str) and k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module.") :]: v for k, v in state_dict.items()}
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key in _NON_WEIGHT_KEYS:
            continue
        if not isinstance(value, torch.Tensor):
            raise ClipbenchError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor")
        cleaned[key] = value.float() if value.is_floating_point() and value.dtype != torch.float32 else value
    return cleaned


def build_model(state_dict: Mapping[str, object], source: str = "checkpoint") -> CLIP:
    """Build an eval-mode fp32 ``CLIP`` on CPU holding exactly the tensors of ``state_dict``.

    The module is created on the meta device and the checkpoint tensors are assigned into it, so no
    time or memory is spent on a random initialisation that would be overwritten anyway.
    """
    weights = clean_state_dict(state_dict, source)
    config = infer_config(weights, source)
    with torch.device("meta"):
        model = CLIP(config)
    expected = set(model.state_dict())
    missing = sorted(expected - set(weights))
    if missing:
        raise ClipbenchError(_missing_message(source, missing))
    unexpected = sorted(set(weights) - expected)
    if unexpected:
        shown = ", ".join(unexpected[:6]) + (f" (and {len(unexpected) - 6} more)" if len(unexpected) > 6 else "")
        raise ClipbenchError(f"{source} has keys an OpenAI CLIP model does not: {shown}")
    for key, tensor in model.state_dict().items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise ClipbenchError(
                f"{source}: {key} has shape {tuple(weights[key].shape)}, expected {tuple(tensor.shape)} "
                f"for the architecture inferred from the other tensors"
            )
    model.load_state_dict(weights, strict=True, assign=True)
    return model.eval()
