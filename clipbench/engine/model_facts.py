"""A record's model facts (architecture, family, parameters, image-tower GFLOPs, resolution), from
the loaded model itself, so readers never reverse-engineer them from a model's name or spec string.

A checkpoint the registry knows by its SHA-256 gives its name as the architecture, with its
parameter count and GFLOPs. Otherwise the backend says what it built: open_clip its architecture
name (``ViT-B-16-quickgelu``), Hugging Face its vision config (width, patch, image size); an
architecture the registry knows (``ViT-B/16``: cost depends on the architecture, not on the
weights) lends its GFLOPs. Parameters are the model's own count (a described model keeps it in
its description).
"""

from __future__ import annotations

import re

from clipbench.models.base import ImageTextModel

#: Hugging Face CLIP vision widths -> the size letter of the architecture's name
_HF_WIDTHS = {768: "B", 1024: "L", 1280: "H"}


def _known_checkpoint(sha256: str):
    from clipbench.models.checkpoints import OPENAI_CHECKPOINTS, PACKAGED_CHECKPOINTS

    return next((c for c in (*OPENAI_CHECKPOINTS, *PACKAGED_CHECKPOINTS) if c.sha256 == sha256), None)


def _backend_architecture(model: ImageTextModel) -> str | None:
    """What the backend built, in open_clip's spelling; vars(): a described model is not built to answer."""
    arch = vars(model).get("arch")  # open_clip
    if isinstance(arch, str):
        return re.sub(r"-quickgelu$", "", arch, flags=re.I)
    vision = getattr(getattr(vars(model).get("module"), "config", None), "vision_config", None)  # Hugging Face
    size = _HF_WIDTHS.get(getattr(vision, "hidden_size", None))
    if size is None:
        return None
    image = int(vision.image_size)
    return f"ViT-{size}-{vision.patch_size}" + ("" if image == 224 else f"-{image}")


def _registered(architecture: str):
    from clipbench.models.registry import MODELS

    for name in (architecture, architecture + "px"):
        if name in MODELS:
            return MODELS.get(name)
    return None


def model_facts(model: ImageTextModel) -> dict:
    """{architecture, family, params, image_gflops, resolution}; None where the model cannot say."""
    known = _known_checkpoint(model.weights_sha256)
    if known is not None:
        architecture, params, gflops = known.name, known.params, known.image_gflops
    else:
        architecture, params, gflops = _backend_architecture(model), model.num_params().get("total"), None
        same = _registered(architecture) if architecture else None
        if same is not None:
            architecture, gflops = same.name, same.image_gflops
    return {"architecture": architecture, "family": model.family, "params": int(params) if params else None,
            "image_gflops": gflops, "resolution": int(model.image_resolution)}
