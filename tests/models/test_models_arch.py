"""Native architectures vs OpenAI's reference ``clip.model``, at the nine real sizes, fp32 on CPU.

Each test builds the reference with random weights, computes its features, saves its state dict
(or a TorchScript archive) to a file, frees it, and loads the file through
``clipbench.load_model``. Features must agree to 1e-5 of the largest reference value. Only the
smallest real size of each family (RN50, ViT-B/32) goes through a file; the others are built from
the state dict in memory by ``build_model``, which the file loader calls after reading: writing and
re-reading their 0.5-1.7 GB files cost 3-10 s each here, and reading a file (mmap, hash,
non-weight entries) does not depend on its size, which RN50, ViT-B/32 and the small TorchScript and
fp16 archives below cover. Every real size is ``slow`` (the development loop keeps the small ones).
"""

from __future__ import annotations

import gc

import pytest
import torch
from _models_fixtures import REAL_CONFIGS, SMALL_CONFIGS, make_reference, max_rel_error, reference_tokens

import clipbench
from clipbench.foundations.fileio import sha256_file
from clipbench.models.build import build_model
from clipbench.models.native import NativeClipModel

pytestmark = pytest.mark.peer

TOLERANCE = 1e-5
TEXTS = ["a photo of a golden retriever, a type of dog.", "a blurry sketch of the number 7 on a whiteboard"]
SLOW = {"RN50x16", "RN50x64", "ViT-L/14", "ViT-L/14@336px"}  # a forward takes tens of seconds
FROM_FILE = {"RN50", "ViT-B/32"}  # the module doc: one real-size file per family


def _reference_features(ref: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
    """Projected and pre-projection image features plus text features, from one reference forward."""
    captured: dict[str, torch.Tensor] = {}
    visual = ref.visual
    if hasattr(visual, "attnpool"):
        # ResNet pre-projection = the attention pool's output before c_proj: rerun only the pool on the
        # captured trunk output, with c_proj replaced by the identity
        hook = visual.layer4.register_forward_hook(lambda module, args, out: captured.__setitem__("trunk", out))
    else:
        # ViT pre-projection = ln_post of the class token, i.e. the encoder output before "@ proj"
        hook = visual.ln_post.register_forward_hook(lambda module, args, out: captured.__setitem__("pre", out))
    with torch.inference_mode():
        image = ref.encode_image(images)
        text = ref.encode_text(tokens)
        if "trunk" in captured:
            pool = visual.attnpool
            projection, width = pool.c_proj, pool.c_proj.in_features
            identity = torch.nn.Linear(width, width)
            identity.weight.copy_(torch.eye(width))
            identity.bias.zero_()
            pool.c_proj = identity
            captured["pre"] = pool(captured.pop("trunk"))
            pool.c_proj = projection
    hook.remove()
    return {"image": image, "pre": captured["pre"], "text": text}


def _assert_matches(
    model, expected: dict[str, torch.Tensor], images: torch.Tensor, tokens: torch.Tensor, pre: bool = True
) -> None:
    errors = {
        "image": max_rel_error(expected["image"], model.encode_image(images)),
        "text": max_rel_error(expected["text"], model.encode_text(tokens)),
    }
    if pre:
        errors["pre"] = max_rel_error(expected["pre"], model.encode_image(images, projected=False))
    assert all(err <= TOLERANCE for err in errors.values()), errors


def _free() -> None:
    gc.collect()


def _inputs(resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1234)
    images = torch.randn(1, 3, resolution, resolution, generator=generator)
    return images, reference_tokens(TEXTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REAL_CONFIGS))
def test_state_dict_matches_reference(name, tmp_path):
    config = REAL_CONFIGS[name]
    images, tokens = _inputs(config[1])
    ref = make_reference(config)
    expected = _reference_features(ref, images, tokens)
    state = ref.state_dict()
    # OpenAI's archives also carry these non-weight entries; the loader must ignore them
    state.update(input_resolution=torch.tensor(config[1]), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    del ref
    if name not in FROM_FILE:  # the module doc: the loader's build step, without the GB-sized file
        model = NativeClipModel(build_model(state, source=name), name=name, weights_sha256="in-memory")
        del state
    else:
        path = tmp_path / "checkpoint.pt"
        torch.save(state, path)
        del state
        _free()
        model = clipbench.load_model(path)
        assert model.weights_sha256 == sha256_file(path)
    _free()
    assert isinstance(model, NativeClipModel)
    assert model.family == ("ViT" if name.startswith("ViT") else "ResNet")
    assert model.image_resolution == config[1] and model.embed_dim == config[0]
    # the largest towers skip the second (pre-projection) image forward; it is the same code path
    # as in the smaller models of the same family, and a forward of these takes tens of seconds
    _assert_matches(model, expected, images, tokens, pre=name not in SLOW)
    del model
    _free()


@pytest.mark.parametrize("name", list(SMALL_CONFIGS))
def test_torchscript_archive_matches_reference(name, tmp_path):
    """OpenAI publishes TorchScript archives. Small configurations of both families: tracing a
    real-size reference costs about a minute each, and reading the archive does not depend on size
    (the real-size tensors are exercised by the state-dict tests above)."""
    config = SMALL_CONFIGS[name]
    images, tokens = _inputs(config[1])
    ref = make_reference(config, seed=3)
    expected = _reference_features(ref, images, tokens)
    path = tmp_path / "scripted.pt"
    # OpenAI's ResNet forward uses a nested function, which torch.jit.script rejects; tracing makes
    # the same kind of archive (code/ + constants.pkl + data/) with the same state-dict keys
    with torch.no_grad():
        traced = torch.jit.trace_module(ref, {"encode_image": (images,), "encode_text": (tokens,)})
    torch.jit.save(traced, str(path))
    model = clipbench.load_model(str(path))
    assert model.weights_sha256 == sha256_file(path)
    _assert_matches(model, expected, images, tokens)


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
