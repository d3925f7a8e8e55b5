"""The length-sorted text tower: same classifier as file-order batching, fewer padded positions."""

from __future__ import annotations

import hashlib

import torch

from clipbench.features.text_classifier import build_text_classifier
from clipbench.models import load_model
from clipbench.models.architecture import CLIP, ClipConfig
from clipbench.models.native import NativeClipModel

TEMPLATES = ["a photo of a {}.", "{}", "a blurry photo of the {} seen from far away on a rainy day in town.",
             "itap of a {}.", "a low resolution photo of my very old and somewhat weathered {}.",
             "art of the {}.", "a drawing of a {} next to a bigger {} and a smaller {}."]
CLASSES = ["cat", "golden retriever dog", "red double-decker bus", "tree", "snow leopard", "kettle", "axolotl"]


def class_prompts() -> list[list[str]]:
    return [[t.replace("{}", c) for t in TEMPLATES] for c in CLASSES]


def file_order_classifier(model, prompts: list[list[str]], batch_size: int) -> torch.Tensor:
    """The builder before sorting: prompts encoded in file order (the reference)."""
    flat = [p for ps in prompts for p in ps]
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(flat), batch_size):
            emb = model.encode_text(model.tokenize(flat[start:start + batch_size])).float()
            chunks.append(emb / emb.norm(dim=-1, keepdim=True))
    emb, out, i = torch.cat(chunks), [], 0
    for ps in prompts:
        mean = emb[i:i + len(ps)].mean(0)
        out.append(mean / mean.norm())
        i += len(ps)
    return torch.stack(out)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.as_tensor(a), torch.as_tensor(b)  # clipbench's classifiers are numpy arrays
    return float((a - b).abs().max() / b.abs().max())


def record_lengths(model) -> list[tuple[int, int]]:
    """Wrap ``model.encode_text`` to record (batch rows, positions run = longest end-of-text + 1)."""
    seen, inner = [], model.encode_text

    def encode_text(tokens):
        seen.append((tokens.shape[0], int(tokens.argmax(-1).max()) + 1))
        return inner(tokens)

    model.encode_text = encode_text
    return seen


def real_size_text_tower() -> NativeClipModel:
    """ViT-B/32's text tower at its real size (width 512, 12 layers, 8 heads), random weights; tiny vision."""
    torch.manual_seed(0)
    config = ClipConfig(embed_dim=512, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
                        context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8,
                        transformer_layers=12)
    module = CLIP(config)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
    return NativeClipModel(module.eval(), "random-B32-text", hashlib.sha256(b"random").hexdigest())


def test_sorted_batches_equal_file_order_on_tiny_model():
    model = load_model("clipbench-tiny")
    prompts = class_prompts()
    reference = file_order_classifier(model, prompts, batch_size=8)
    seen = record_lengths(model)
    sorted_weights = build_text_classifier(model, prompts, batch_size=8)
    assert rel(sorted_weights, reference) <= 1e-6
    lengths = [n for _, n in seen]
    assert sum(rows for rows, _ in seen) == len(CLASSES) * len(TEMPLATES)
    assert lengths == sorted(lengths)  # batches in length order: each stops at its own longest prompt


def test_sorted_batches_run_fewer_positions_than_file_order():
    model = load_model("clipbench-tiny")
    prompts = class_prompts()
    seen = record_lengths(model)
    file_order_classifier(model, prompts, batch_size=8)
    file_positions = sum(rows * n for rows, n in seen)
    seen.clear()
    build_text_classifier(model, prompts, batch_size=8)
    sorted_positions = sum(rows * n for rows, n in seen)
    assert sorted_positions < 0.75 * file_positions, (sorted_positions, file_positions)


def test_sorted_batches_equal_file_order_on_real_size_text_tower():
    model = real_size_text_tower()
    prompts = class_prompts()  # 49 prompts
    reference = file_order_classifier(model, prompts, batch_size=16)
    assert rel(build_text_classifier(model, prompts, batch_size=16), reference) <= 1e-6


def test_output_order_kept_when_classes_have_different_prompt_counts():
    model = load_model("clipbench-tiny")
    prompts = [p[: 1 + i % len(TEMPLATES)] for i, p in enumerate(class_prompts())][::-1]
    reference = file_order_classifier(model, prompts, batch_size=3)
    assert rel(build_text_classifier(model, prompts, batch_size=3), reference) <= 1e-6
