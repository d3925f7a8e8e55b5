"""Native architectures vs OpenAI's reference ``clip.model``, at the nine real sizes, fp32 on CPU.

Each test builds the reference with random weights, computes its features, saves its state dict
(or a TorchScript archive) to a file, frees it, and loads the file through
``clipbench.load_model``. Features must agree to 1e-5 of the largest reference value.
"""

from __future__ import annotations

import gc

import pytest
import torch
from _models_fixtures import REAL_CONFIGS, SMALL_CONFIGS, make_reference, max_rel_error, reference_tokens

import clipbench
from clipbench.fileio import sha256_file
from clipbench.models.native import NativeClipModel

TOLERANCE = 1e-5
TEXTS = ["a photo of a golden retriever, a type of dog.", "a blurry sketch of the number 7 on a whiteboard"]
SLOW = {"RN50x16", "RN50x64", "ViT-L/14", "ViT-L/14@336px"}


def _reference_features(ref: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Projected and pre-projection image features plus text features from the reference model."""
    with torch.inference_mode():
        image = ref.encode_image(images)
        text = ref.encode_text(tokens)
        visual = ref.visual
        if hasattr(visual, "attnpool"):
            # pre-projection = the attention pool's output before c_proj: rerun with c_proj as identity
            projection = visual.attnpool.c_proj
            width = projection.in_features
            identity = torch.nn.Linear(width, width)
            identity.weight.copy_(torch.eye(width))
            identity.bias.zero_()
            visual.attnpool.c_proj = identity
            pre = ref.encode_image(images)
            visual.attnpool.c_proj = projection
        else:
            # pre-projection = ln_post of the class token, i.e. the encoder output without "@ proj"
            projection = visual.proj
            visual.proj = None
            pre = ref.encode_image(images)
            visual.proj = projection
    return {"image": image, "pre": pre, "text": text}


def _assert_matches(model, expected: dict[str, torch.Tensor], images: torch.Tensor, tokens: torch.Tensor) -> None:
    errors = {
        "image": max_rel_error(expected["image"], model.encode_image(images)),
        "pre": max_rel_error(expected["pre"], model.encode_image(images, projected=False)),
        "text": max_rel_error(expected["text"], model.encode_text(tokens)),
    }
    assert all(err <= TOLERANCE for err in errors.values()), errors


def _free() -> None:
    gc.collect()


def _inputs(resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1234)
    images = torch.randn(1, 3, resolution, resolution, generator=generator)
    return images, reference_tokens(TEXTS)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in REAL_CONFIGS]
)
def test_state_dict_matches_reference(name, tmp_path):
    config = REAL_CONFIGS[name]
    images, tokens = _inputs(config[1])
    ref = make_reference(config)
    expected = _reference_features(ref, images, tokens)
    state = ref.state_dict()
    # OpenAI's archives also carry these non-weight entries; the loader must ignore them
    state.update(input_resolution=torch.tensor(config[1]), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    path = tmp_path / "checkpoint.pt"
    torch.save(state, path)
    del ref, state
    _free()

    model = clipbench.load_model(path)
    assert isinstance(model, NativeClipModel)
    assert model.family == ("ViT" if name.startswith("ViT") else "ResNet")
    assert model.image_resolution == config[1] and model.embed_dim == config[0]
    assert model.weights_sha256 == sha256_file(path)
    _assert_matches(model, expected, images, tokens)
    del model
    _free()


@pytest.mark.parametrize("name", ["RN50", "ViT-B/32"])
def test_torchscript_archive_matches_reference(name, tmp_path):
    """OpenAI publishes TorchScript archives; a scripted reference (real size) must load identically."""
    config = REAL_CONFIGS[name]
    images, tokens = _inputs(config[1])
    ref = make_reference(config, seed=3)
    expected = _reference_features(ref, images, tokens)
    path = tmp_path / "scripted.pt"
    # OpenAI's ResNet forward uses a nested function, which torch.jit.script rejects; tracing makes
    # the same kind of archive (code/ + constants.pkl + data/) with the same state-dict keys
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace_module(ref, {"encode_image": (images,), "encode_text": (tokens,)})
    torch.jit.save(traced, str(path))
    del traced
    del ref
    _free()
    _assert_matches(clipbench.load_model(str(path)), expected, images, tokens)


@pytest.mark.parametrize("name", list(SMALL_CONFIGS))
def test_fp16_state_dict_is_loaded_in_fp32(name, tmp_path):
    """Half-precision files (like OpenAI's) load as fp32 copies of the rounded weights."""
    config = SMALL_CONFIGS[name]
    images, tokens = _inputs(config[1])
    ref = make_reference(config, seed=5)
    torch.save({"state_dict": ref.half().state_dict()}, tmp_path / "half.pt")
    ref.float()  # now holds exactly the fp16-rounded weights, in fp32
    expected = _reference_features(ref, images, tokens)
    model = clipbench.load_model(tmp_path / "half.pt")
    assert all(p.dtype == torch.float32 for p in model.module.parameters())
    _assert_matches(model, expected, images, tokens)


def test_text_features_do_not_depend_on_batch_padding_length():
    """The text tower stops at the batch's last end-of-text; a short text alone or next to a long one agrees."""
    ref = make_reference(SMALL_CONFIGS["small-vit"], seed=7)
    from clipbench.models.build import build_model

    model = NativeClipModel(build_model(ref.state_dict()), name="small", weights_sha256="0" * 64)
    short, long = clipbench.tokenize(["a cat"]), clipbench.tokenize(["a cat " * 30])
    alone = model.encode_text(short)
    together = model.encode_text(torch.cat([short, long]))[:1]
    assert max_rel_error(alone, together) <= TOLERANCE
    with torch.inference_mode():
        assert max_rel_error(ref.encode_text(torch.cat([short, long])), model.encode_text(torch.cat([short, long]))) <= TOLERANCE
