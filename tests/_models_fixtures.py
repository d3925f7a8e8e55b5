"""Reference CLIP models (OpenAI's ``clip.model``) with random weights of the real sizes, for tests.

The reference is built from its constructor in fp32 (``clip.model.build_model`` would cast to fp16),
initialised by its own ``initialize_parameters``, then the parameters that initialisation leaves
at trivial values (norm gains/biases, BatchNorm statistics, the zeroed last BN of each ResNet
block) are randomised so that every weight influences the output being compared.
"""

from __future__ import annotations

import warnings

import torch

with warnings.catch_warnings():  # openai-clip imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import clip  # noqa: F401
    import clip.model as reference_model
    import clip.simple_tokenizer as reference_tokenizer  # noqa: F401

#: The real hyperparameters of OpenAI's nine checkpoints, as arguments of ``clip.model.CLIP``:
#: embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
#: context_length, vocab_size, transformer_width, transformer_heads, transformer_layers.
REAL_CONFIGS: dict[str, tuple] = {
    "RN50": (1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12),
    "RN101": (512, 224, (3, 4, 23, 3), 64, None, 77, 49408, 512, 8, 12),
    "RN50x4": (640, 288, (4, 6, 10, 6), 80, None, 77, 49408, 640, 10, 12),
    "RN50x16": (768, 384, (6, 8, 18, 8), 96, None, 77, 49408, 768, 12, 12),
    "RN50x64": (1024, 448, (3, 15, 36, 10), 128, None, 77, 49408, 1024, 16, 12),
    "ViT-B/32": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-B/16": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
    "ViT-L/14": (768, 224, 24, 1024, 14, 77, 49408, 768, 12, 12),
    "ViT-L/14@336px": (768, 336, 24, 1024, 14, 77, 49408, 768, 12, 12),
}

#: Small configurations of the same two families, for tests that do not need real sizes.
SMALL_CONFIGS: dict[str, tuple] = {
    "small-resnet": (128, 64, (1, 2, 1, 1), 32, None, 77, 49408, 128, 2, 2),
    "small-vit": (128, 64, 2, 128, 16, 77, 49408, 128, 2, 2),
}


def randomize_trivial_parameters(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give norm layers and BatchNorm statistics non-trivial random values (in place)."""

    def rand_like(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=generator, dtype=t.dtype)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.1 * rand_like(module.weight))
                module.bias.copy_(0.1 * rand_like(module.bias))
            elif isinstance(module, torch.nn.BatchNorm2d):
                # small gains keep a 60-block residual stack from blowing up while every block still counts
                module.weight.copy_(0.2 + 0.05 * rand_like(module.weight))
                module.bias.copy_(0.05 * rand_like(module.bias))
                module.running_mean.copy_(0.05 * rand_like(module.running_mean))
                module.running_var.copy_(0.75 + 0.5 * torch.rand(module.running_var.shape, generator=generator))
        model.logit_scale.fill_(4.6052)


def make_reference(config: tuple, seed: int = 0) -> torch.nn.Module:
    """OpenAI's ``clip.model.CLIP`` in fp32, eval mode, with realistic random weights."""
    torch.manual_seed(seed)
    model = reference_model.CLIP(*config)
    randomize_trivial_parameters(model, torch.Generator().manual_seed(seed + 1))
    return model.float().eval()


def reference_tokens(texts: list[str]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clip.tokenize(texts, truncate=True).long()


def max_rel_error(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    """max |a - b| / max |a|: the tolerance measure of the parity tests."""
    reference, candidate = reference.float(), candidate.float()
    assert reference.shape == candidate.shape, (reference.shape, candidate.shape)
    scale = reference.abs().max().item()
    assert scale > 0 and torch.isfinite(reference).all()
    return (reference - candidate).abs().max().item() / scale
