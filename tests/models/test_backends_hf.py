"""Hugging Face backend: features equal transformers' own and the native model's on the same weights."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import transformers
from _backends_fixtures import make_hf_clip_dir, random_image, rel_err

from clipbench.foundations.errors import ClipbenchError, OfflineError
from clipbench.models.backends.hf import load_hf, openai_state_dict_from_hf

TEXTS = ["a photo of a cat.", "a blurry photo of a truck.", "itap of my dog"]
# (width, height): landscape, portrait, square, and sizes whose crop origin is x.5 (floor != round)
SIZES = [(97, 64), (64, 99), (64, 64), (150, 111), (66, 129)]


def _with_config(src: Path, dst: Path, **changes) -> Path:
    """A copy of a saved model whose config.json has some text/vision fields changed."""
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    for key, value in changes.items():
        cfg["text_config"][key] = value
        if key != "eos_token_id":
            cfg["vision_config"][key] = value
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    return make_hf_clip_dir(tmp_path_factory.mktemp("hf") / "tiny-clip", seed=0)


@pytest.fixture(scope="module")
def model(hf_dir):
    return load_hf(f"hf:{hf_dir}")


def test_load_model_dispatches_hf_prefix(model, hf_dir):
    from clipbench.models import load_model

    again = load_model(f"hf:{hf_dir}")
    assert again.identity == model.identity and again.name == model.name


@pytest.mark.peer
def test_preprocess_equals_clip_image_processor(model, hf_dir):
    processor = transformers.CLIPImageProcessorPil.from_pretrained(hf_dir)
    rounding_differs = False
    for i, (w, h) in enumerate(SIZES):
        img = random_image(w, h, seed=i, mode="RGBA" if i == 0 else "RGB")
        ours = model.preprocess(img)
        theirs = processor(images=img, return_tensors="pt")["pixel_values"][0]
        assert ours.shape == theirs.shape == (3, 64, 64)
        assert (ours - theirs).abs().max() <= 1e-5, (w, h)
        slack = int(64 * max(w, h) / min(w, h)) - 64  # long side after the shortest-side resize, minus crop
        rounding_differs |= slack // 2 != int(round(slack / 2))  # transformers' origin vs torchvision's
    assert rounding_differs  # the size list exercises the floor-vs-round crop origin


def test_tokenizer_pads_to_77_and_matches_clip_ids(model):
    from clipbench.models.tokenizer import tokenize as native_tokenize

    ours = model.tokenize(TEXTS)
    native = native_tokenize(TEXTS)
    assert ours.shape == (3, 77) and ours.dtype == torch.long
    for row_ours, row_native in zip(ours, native, strict=True):
        n = int(row_native.argmax()) + 1  # up to and including end-of-text
        assert torch.equal(row_ours[:n], row_native[:n])
    long_text = " ".join(["word"] * 200)
    truncated = model.tokenize(long_text)[0]
    assert truncated[0] == 49406 and truncated[-1] == 49407 and truncated.shape == (77,)


@pytest.mark.peer
def test_features_equal_transformers_own(model, hf_dir):
    reference = transformers.CLIPModel.from_pretrained(hf_dir).eval()
    processor = transformers.CLIPImageProcessorPil.from_pretrained(hf_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    imgs = [random_image(w, h, seed=i) for i, (w, h) in enumerate(SIZES[:3])]
    pixels = processor(images=imgs, return_tensors="pt")["pixel_values"]
    batch = tokenizer(TEXTS, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        ref_img = reference.get_image_features(pixel_values=pixels)
        ref_txt = reference.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        ref_img = getattr(ref_img, "pooler_output", ref_img)
        ref_txt = getattr(ref_txt, "pooler_output", ref_txt)
        ref_pre = reference.vision_model(pixel_values=pixels).pooler_output
    images = torch.stack([model.preprocess(i) for i in imgs])
    assert rel_err(model.encode_image(images), ref_img) <= 1e-5
    assert rel_err(model.encode_text(model.tokenize(TEXTS)), ref_txt) <= 1e-5
    assert rel_err(model.encode_image(images, projected=False), ref_pre) <= 1e-5
    assert (model.family, model.image_resolution, model.embed_dim, model.context_length) == ("ViT", 64, 64, 77)
    assert model.num_params()["total"] == sum(p.numel() for p in reference.parameters())


def test_features_equal_native_model_on_converted_weights(model, tmp_path):
    from clipbench.models import load_model

    converted = tmp_path / "converted.pt"
    torch.save(openai_state_dict_from_hf(model.module.state_dict(), model.module.config), converted)
    native = load_model(converted)
    assert (native.family, native.image_resolution, native.embed_dim) == ("ViT", 64, 64)
    images = torch.stack([model.preprocess(random_image(w, h, seed=i)) for i, (w, h) in enumerate(SIZES[:2])])
    tokens = model.tokenize(TEXTS)  # HF pads with end-of-text, native with 0: same features (causal)
    with torch.no_grad():
        assert rel_err(model.encode_image(images), native.encode_image(images)) <= 1e-5
        assert rel_err(model.encode_image(images, projected=False), native.encode_image(images, projected=False)) <= 1e-5
        assert rel_err(model.encode_text(tokens), native.encode_text(tokens)) <= 1e-5


def test_legacy_eos_token_id_2_pools_at_end_of_text_too(model, hf_dir, tmp_path):
    legacy = load_hf(f"hf:{_with_config(hf_dir, tmp_path / 'legacy', eos_token_id=2)}")
    tokens = model.tokenize(TEXTS)
    assert rel_err(legacy.encode_text(tokens), model.encode_text(tokens)) <= 1e-6
    assert legacy.identity != model.identity  # config that changes the pooling rule is in the identity


def test_gelu_config_changes_identity_and_refuses_native_conversion(model, hf_dir, tmp_path):
    gelu = load_hf(f"hf:{_with_config(hf_dir, tmp_path / 'gelu', hidden_act='gelu')}")
    assert gelu.identity != model.identity
    tokens = model.tokenize(TEXTS)
    assert rel_err(gelu.encode_text(tokens), model.encode_text(tokens)) > 1e-3
    with pytest.raises(ClipbenchError, match="quick_gelu"):
        openai_state_dict_from_hf(gelu.module.state_dict(), gelu.module.config)


def test_offline_hub_repo_not_cached(tmp_path):
    with pytest.raises(OfflineError, match="hf:openai/clip-vit-base-patch16.*offline") as info:
        load_hf("hf:openai/clip-vit-base-patch16", cache_dir=tmp_path, offline=True)
    assert "\n" not in str(info.value)


def test_missing_local_directory(tmp_path):
    with pytest.raises(ClipbenchError, match="model directory not found"):
        load_hf(f"hf:{tmp_path}/nope/model", cache_dir=tmp_path)


def test_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ClipbenchError, match=r"pip install 'clipbench\[hf\]'"):
        load_hf("hf:openai/clip-vit-base-patch16", cache_dir=tmp_path)
