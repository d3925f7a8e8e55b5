"""A record's model facts (architecture, family, parameters, image-tower GFLOPs, resolution), from
the loaded model itself, so readers never reverse-engineer them from a model's name or spec string.

A checkpoint the registry knows by its SHA-256 gives its name as the architecture, with its
parameter count and GFLOPs; otherwise the backend says what it knows (open_clip its architecture
name). Parameters are the model's own count (a described model keeps it in its description).
"""

from __future__ import annotations

from clipbench.models.base import ImageTextModel


def _known_checkpoint(sha256: str):
    from clipbench.models.checkpoints import OPENAI_CHECKPOINTS, PACKAGED_CHECKPOINTS

    return next((c for c in (*OPENAI_CHECKPOINTS, *PACKAGED_CHECKPOINTS) if c.sha256 == sha256), None)


def model_facts(model: ImageTextModel) -> dict:
    """{architecture, family, params, image_gflops, resolution}; None where the model cannot say."""
    known = _known_checkpoint(model.weights_sha256)
    params = model.num_params().get("total") if known is None else known.params
    return {
        # vars(): a described model would be built just to answer getattr
        "architecture": known.name if known is not None else vars(model).get("arch"),
        "family": model.family,
        "params": int(params) if params else None,
        "image_gflops": known.image_gflops if known is not None else None,
        "resolution": int(model.image_resolution),
    }
