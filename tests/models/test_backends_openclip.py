"""open_clip backend: same weights give the same features as open_clip itself and as the native model."""

from __future__ import annotations

import sys
from pathlib import Path

import open_clip
import pytest
import torch
from _backends_fixtures import (
    TINY_RN,
    TINY_VIT,
    TINY_VIT_GELU,
    make_openclip_checkpoint,
    random_image,
    register_tiny_openclip_archs,
    rel_err,
)

from clipbench.foundations.errors import ChecksumError, ClipbenchError, OfflineError
from clipbench.models.backends.openclip import load_openclip, parse_spec

TEXTS = ["a photo of a cat.", "a blurry photo of a truck.", "itap of my dog"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("openclip")
    register_tiny_openclip_archs(root / "configs")
    return {arch: make_openclip_checkpoint(arch, root / f"{arch}.pt", seed=i) for i, arch in enumerate((TINY_VIT, TINY_RN))}


def _open_clip_reference(arch: str, checkpoint: Path, quick_gelu: bool = False):
    model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    return model.eval()


def _native(checkpoint: Path):
    """The same file through clipbench's own architecture (plain ``load_model(path)``)."""
    from clipbench.models import load_model

    return load_model(checkpoint)


@pytest.mark.peer
@pytest.mark.parametrize("arch,family", [(TINY_VIT, "ViT"), (TINY_RN, "ResNet")])
def test_local_checkpoint_matches_open_clip_and_native(checkpoints, arch, family, tmp_path):
    ckpt = checkpoints[arch]
    from clipbench.models import load_model

    model = load_model(f"openclip:{arch}@{ckpt}", cache_dir=tmp_path)  # dispatch through the backend table
    assert (model.family, model.image_resolution, model.embed_dim, model.context_length) == (family, 64, 64, 77)
    images = torch.stack([model.preprocess(random_image(97, 64, seed=1)), model.preprocess(random_image(64, 80, seed=2))])
    tokens = model.tokenize(TEXTS)
    reference = _open_clip_reference(arch, ckpt)
    native = _native(ckpt)
    params = model.num_params()
    assert params["total"] == sum(p.numel() for p in reference.parameters())
    assert params["image"] == sum(p.numel() for p in reference.visual.parameters())
    assert params["image"] + params["text"] + 1 == params["total"]  # + logit_scale
    # same pixels and token ids as the native pipeline
    assert torch.equal(images[0], native.preprocess(random_image(97, 64, seed=1)))
    assert torch.equal(tokens, native.tokenize(TEXTS))
    assert (native.family, native.image_resolution, native.embed_dim) == (family, 64, 64)
    with torch.no_grad():
        ours_img, ours_txt = model.encode_image(images), model.encode_text(tokens)
        assert rel_err(ours_img, reference.encode_image(images)) <= 1e-5
        assert rel_err(ours_txt, reference.encode_text(tokens)) <= 1e-5
        assert rel_err(ours_img, native.encode_image(images)) <= 1e-5
        assert rel_err(ours_txt, native.encode_text(tokens)) <= 1e-5
        pre = model.encode_image(images, projected=False)
        assert rel_err(pre, native.encode_image(images, projected=False)) <= 1e-5
        assert pre.shape[1] == (128 if family == "ViT" else 16 * 32)
        # the projection was restored after the pre-projection call
        assert rel_err(model.encode_image(images), ours_img) == 0.0
    assert model.weights_sha256 in model.identity and "quickgelu" in model.identity


def _hub_cache_file(cache: Path, repo_id: str, filename: str, source: Path) -> Path:
    """Lay a file out the way huggingface_hub caches it (what open_clip's download leaves behind)."""
    repo_dir = cache / "openclip" / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    target = repo_dir / "snapshots" / commit / filename
    target.parent.mkdir(parents=True)
    target.write_bytes(source.read_bytes())
    return target


@pytest.mark.peer
def test_pretrained_tag_offline_from_cache_takes_quickgelu_from_the_tag(checkpoints, tmp_path, monkeypatch):
    """``ARCH/TAG`` for OpenAI-trained weights on a plain-GELU arch must still run QuickGELU."""
    from open_clip import pretrained as oc_pretrained

    ckpt = checkpoints[TINY_VIT]  # QuickGELU-trained weights, same shapes as the GELU arch
    tag_cfg = {"hf_hub": "cbtest/tiny-openai/", "quick_gelu": True, "mean": (0.48145466, 0.4578275, 0.40821073),
               "std": (0.26862954, 0.26130258, 0.27577711), "interpolation": "bicubic", "resize_mode": "shortest"}
    monkeypatch.setitem(oc_pretrained._PRETRAINED, TINY_VIT_GELU, {"openai": tag_cfg})
    _hub_cache_file(tmp_path, "cbtest/tiny-openai", "open_clip_pytorch_model.bin", ckpt)

    model = load_openclip(f"openclip:{TINY_VIT_GELU}/openai", cache_dir=tmp_path, offline=True)
    assert model.quick_gelu and model.name == f"openclip:{TINY_VIT_GELU}/openai"
    images = model.preprocess(random_image(70, 70, seed=3)).unsqueeze(0)
    tokens = model.tokenize(TEXTS)
    with torch.no_grad():
        quick = _open_clip_reference(TINY_VIT_GELU, ckpt, quick_gelu=True)
        plain = _open_clip_reference(TINY_VIT_GELU, ckpt, quick_gelu=False)
        assert rel_err(model.encode_text(tokens), quick.encode_text(tokens)) <= 1e-5
        assert rel_err(model.encode_image(images), quick.encode_image(images)) <= 1e-5
        assert rel_err(model.encode_text(tokens), plain.encode_text(tokens)) > 1e-3  # the pitfall is real


def test_offline_without_cached_weights_is_one_clear_error(tmp_path):
    with pytest.raises(OfflineError, match="ViT-B-32/laion2b_s34b_b79k.*offline"):
        load_openclip("openclip:ViT-B-32/laion2b_s34b_b79k", cache_dir=tmp_path, offline=True)


def test_cached_url_download_with_wrong_checksum_is_refused(tmp_path, checkpoints, monkeypatch):
    from open_clip import pretrained as oc_pretrained

    url = "https://openaipublic.azureedge.net/clip/models/" + "ab" * 32 + "/tiny.pt"
    monkeypatch.setitem(oc_pretrained._PRETRAINED, TINY_VIT, {"openai": {"url": url, "quick_gelu": True}})
    (tmp_path / "openclip").mkdir()
    (tmp_path / "openclip" / "tiny.pt").write_bytes(checkpoints[TINY_VIT].read_bytes())
    with pytest.raises(ChecksumError, match="tiny.pt"):
        load_openclip(f"openclip:{TINY_VIT}/openai", cache_dir=tmp_path, offline=True)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("openclip:ViT-B-32", "expected openclip:ARCH/TAG"),
        ("openclip:ViT-B-33/openai", "unknown open_clip architecture 'ViT-B-33'.*did you mean"),
        ("openclip:ViT-B-32/no-such-tag", "no pretrained tag 'no-such-tag'.*known tags: .*openai"),
        ("openclip:ViT-B-32@/nonexistent/ckpt.pt", "checkpoint file not found: /nonexistent/ckpt.pt"),
        ("openclip:@/x.pt", "bad open_clip spec"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message, tmp_path):
    with pytest.raises(ClipbenchError, match=message) as info:
        load_openclip(spec, cache_dir=tmp_path, offline=True)
    assert "\n" not in str(info.value)


def test_checkpoint_of_another_architecture_is_one_line_error(checkpoints, tmp_path):
    with pytest.raises(ClipbenchError, match=f"does not load into open_clip architecture '{TINY_VIT}'") as info:
        load_openclip(f"openclip:{TINY_VIT}@{checkpoints[TINY_RN]}", cache_dir=tmp_path)
    assert "\n" not in str(info.value)


def test_parse_spec_forms():
    assert parse_spec("openclip:ViT-B-16/laion2b_s34b_b88k") == ("ViT-B-16", "laion2b_s34b_b88k", None)
    assert parse_spec("openclip:ViT-B/16/openai") == ("ViT-B/16", "openai", None)
    assert parse_spec("openclip:RN50-quickgelu@/ck/a@b.pt") == ("RN50-quickgelu", None, Path("/ck/a@b.pt"))


def test_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip now raises ImportError
    with pytest.raises(ClipbenchError, match=r"pip install 'clipbench\[openclip\]'"):
        load_openclip("openclip:ViT-B-32/openai", cache_dir=tmp_path)


class _Planted:
    """Not a tensor: a pickle holding it is what torch's weights-only loader refuses."""

    def __reduce__(self):
        return (print, ("planted pickle ran",))


def test_a_checkpoint_holding_other_python_objects_is_one_line_and_runs_nothing(checkpoints, tmp_path, capsys):
    """torch's refusal of a non-tensor pickle is many lines of advice (``weights_only=False``); clipbench says
    one line with its cause, and the planted object's code never runs (issue 27)."""
    planted = tmp_path / "planted.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "extra": _Planted()}, planted)
    with pytest.raises(ClipbenchError, match="does not load into open_clip architecture") as info:
        load_openclip(f"openclip:{TINY_VIT}@{planted}", cache_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert "planted pickle ran" not in capsys.readouterr().out
