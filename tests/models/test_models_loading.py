"""Checkpoint table, hyperparameter inference, load_model resolution and errors, preprocessing, listing."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pytest
import torch
from _models_fixtures import REAL_CONFIGS, SMALL_CONFIGS, clip, make_reference, reference_model
from PIL import Image

import clipbench
import clipbench.models.listing as listing
import clipbench.models.loading as loading
from clipbench.foundations.errors import ClipbenchError, OfflineError, UnknownNameError
from clipbench.foundations.registry import Registry
from clipbench.models import MODELS, describe_models
from clipbench.models.architecture import CLIP, ClipConfig
from clipbench.models.build import infer_config
from clipbench.models.checkpoints import OPENAI_CHECKPOINTS, CheckpointInfo
from clipbench.models.download import is_verified
from clipbench.models.preprocess import clip_preprocess, clip_preprocess_id


def _meta_reference(config: tuple) -> torch.nn.Module:
    with torch.device("meta"):
        return reference_model.CLIP(*config)


def _as_config(args: tuple) -> ClipConfig:
    return ClipConfig(*args)


@pytest.mark.peer
@pytest.mark.parametrize("name", list(REAL_CONFIGS))
def test_hyperparameters_inferred_from_shapes(name):
    """Every hyperparameter of all nine architectures is recovered from the reference's state-dict shapes."""
    config = REAL_CONFIGS[name]
    reference = _meta_reference(config)
    assert infer_config(reference.state_dict()) == _as_config(config)
    # and the native module built from it has exactly the reference's keys and shapes
    with torch.device("meta"):
        native = CLIP(_as_config(config))
    assert {k: v.shape for k, v in native.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


@pytest.mark.peer
@pytest.mark.parametrize("info", OPENAI_CHECKPOINTS, ids=lambda i: i.name)
def test_checkpoint_table_agrees_with_the_architectures(info):
    config = REAL_CONFIGS[info.name]
    reference = _meta_reference(config)
    assert info.resolution == config[1] and info.embed_dim == config[0]
    assert info.family == _as_config(config).family
    assert info.params == sum(p.numel() for p in reference.parameters())
    assert info.url.startswith("https://openaipublic.azureedge.net/clip/models/")
    assert f"/{info.sha256}/" in info.url and info.filename.endswith(".pt")
    assert info.image_gflops is not None and info.image_gflops > 0
    assert clip.clip._MODELS[info.name] == info.url  # same download location as OpenAI's own loader


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("ViT-B/16", "ViT-B/16"), ("ViT-B-16", "ViT-B/16"), ("vit-b-16", "ViT-B/16"), ("vit_b_16", "ViT-B/16"),
        ("ViT-L-14-336", "ViT-L/14@336px"), ("ViT-L-14-336px", "ViT-L/14@336px"), ("rn50x4", "RN50x4"),
        ("resnet50", "RN50"),
    ],
)
def test_aliases(spelling, canonical):
    assert MODELS.canonical(spelling) == canonical


def test_checkpoint_info_validation():
    with pytest.raises(ValueError, match="sha256"):
        CheckpointInfo(name="x", sha256="abc", url="https://example.com/x.pt")
    with pytest.raises(ValueError, match="exactly one"):
        CheckpointInfo(name="x", sha256="0" * 64, url="https://example.com/x.pt", package_file="models/x.pt")
    with pytest.raises(ValueError, match="exactly one"):
        CheckpointInfo(name="x", sha256="0" * 64)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown model 'ViT-B/17'; did you mean .*ViT-B/16"):
        clipbench.load_model("ViT-B/17")


def test_unknown_backend_prefix():
    with pytest.raises(UnknownNameError, match=r"unknown model backend 'nope'.*openclip:.*hf:"):
        clipbench.load_model("nope:something")


def test_backend_prefix_dispatches_lazily(monkeypatch):
    calls = []
    monkeypatch.setitem(loading.BACKENDS, "fake", "_models_fixtures:fake_backend")
    import _models_fixtures

    monkeypatch.setattr(_models_fixtures, "fake_backend", lambda *a, **kw: calls.append((a, kw)) or "model", raising=False)
    assert clipbench.load_model("fake:Some/Model", device="cpu", cache_dir="/c", offline=True) == "model"
    assert calls == [(("fake:Some/Model",), {"device": "cpu", "cache_dir": "/c", "offline": True})]


def test_offline_registered_model_names_url_and_path(tmp_path):
    with pytest.raises(OfflineError) as info:
        clipbench.load_model("ViT-B/32", cache_dir=tmp_path, offline=True)
    entry = MODELS.get("ViT-B/32")
    assert entry.url in str(info.value)
    assert str(tmp_path / "checkpoints" / "ViT-B-32.pt") in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ClipbenchError, match="does not exist"):
        clipbench.load_model(str(tmp_path / "missing.pt"))


def test_non_clip_state_dict_names_missing_keys(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, path)
    with pytest.raises(ClipbenchError) as info:
        clipbench.load_model(path)
    message = str(info.value)
    assert str(path) in message and "not an OpenAI CLIP state dict" in message
    assert "token_embedding.weight" in message and "visual.proj (ViT) or visual.attnpool.* (ResNet)" in message


def test_partial_clip_state_dict_names_the_missing_tensor(tmp_path):
    state = make_reference(SMALL_CONFIGS["small-resnet"]).state_dict()
    del state["visual.layer2.0.bn2.running_var"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ClipbenchError, match=r"missing keys visual\.layer2\.0\.bn2\.running_var"):
        clipbench.load_model(tmp_path / "partial.pt")


def test_arbitrary_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": CheckpointInfo(name="x", sha256="0" * 64, url="https://e/x.pt")}, path)
    with pytest.raises(ClipbenchError, match="Python objects other than tensors"):
        clipbench.load_model(path)


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=2)[:5] + b"not a checkpoint")  # a broken pickle stream
    with pytest.raises(ClipbenchError, match="not a readable PyTorch checkpoint"):
        clipbench.load_model(path)


@pytest.mark.peer
def test_native_model_interface(tmp_path):
    ref = make_reference(SMALL_CONFIGS["small-resnet"], seed=2)
    torch.save(ref.state_dict(), tmp_path / "small.pt")
    model = clipbench.load_model(str(tmp_path / "small.pt"))
    assert model.name == str(tmp_path / "small.pt")
    assert model.identity.endswith(model.weights_sha256)
    counts = model.num_params()
    assert counts["total"] == sum(p.numel() for p in ref.parameters())
    assert counts["image"] == sum(p.numel() for p in ref.visual.parameters())
    assert counts["image"] + counts["text"] + 1 == counts["total"]  # + logit_scale
    assert model.device == torch.device("cpu") and model.context_length == 77
    assert model.encode_image(torch.zeros(2, 3, 64, 64)).shape == (2, 128)
    assert model.encode_image(torch.zeros(2, 3, 64, 64), projected=False).shape == (2, 32 * 32)
    assert model.tokenize(["a", "b"]).shape == (2, 77)
    with pytest.raises(ClipbenchError, match=r"\[N, 3, H, W\]"):
        model.encode_image(torch.zeros(3, 64, 64))
    with pytest.raises(ClipbenchError, match="token ids must lie in"):
        model.encode_text(torch.full((1, 77), 49408))


@pytest.mark.peer
def test_preprocess_identical_to_reference():
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8), "RGB"),
        Image.fromarray(rng.integers(0, 256, (411, 250, 4), dtype=np.uint8), "RGBA"),
        Image.fromarray(rng.integers(0, 256, (120, 97), dtype=np.uint8), "L"),
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB").convert("P"),
    ]
    for resolution in (224, 336):
        ours, theirs = clip_preprocess(resolution), clip.clip._transform(resolution)
        for image in images:
            out = ours(image)
            assert out.shape == (3, resolution, resolution)
            assert torch.equal(out, theirs(image))
    assert clip_preprocess_id(224) != clip_preprocess_id(336)


def test_describe_models_lists_the_table(tmp_path):
    rows = describe_models(cache_dir=tmp_path)
    assert [r["name"] for r in rows] == MODELS.names()
    assert {"name", "aliases", "resolution", "embed_dim", "family", "params", "cached", "verified"} <= set(rows[0])
    assert not any(r["cached"] for r in rows if r["source"] != "package")
    assert all(r["cached"] and r["verified"] for r in rows if r["source"] == "package")  # clipbench-tiny


def test_packaged_checkpoint_registration_and_listing(tmp_path, monkeypatch):
    """A package-data checkpoint (path + SHA-256, no URL) registers in one line and loads without download."""
    ref = make_reference(SMALL_CONFIGS["small-vit"], seed=4)
    path = tmp_path / "tiny.pt"
    torch.save(ref.state_dict(), path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(CheckpointInfo, "package_path", lambda self: path)
    registry: Registry[CheckpointInfo] = Registry("model")
    info = CheckpointInfo.packaged("tiny-test", "models/data/tiny.pt", sha256=sha)
    registry.register(info.name, info, info.aliases)
    monkeypatch.setattr(loading, "MODELS", registry)
    monkeypatch.setattr(listing, "MODELS", registry)

    model = loading.load_model("TINY_TEST", offline=True)
    assert model.name == "tiny-test" and model.weights_sha256 == sha
    (row,) = describe_models(cache_dir=tmp_path)
    assert row["source"] == "package" and row["cached"] is True and row["verified"] is True
    assert (row["resolution"], row["embed_dim"], row["family"]) == (64, 128, "ViT")
    assert row["params"] == sum(p.numel() for p in ref.parameters())

    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ClipbenchError, match="does not have SHA-256"):
        loading.load_model("tiny-test")


def test_describe_models_reports_cached_and_verified(tmp_path, monkeypatch):
    data = b"pretend checkpoint"
    sha = hashlib.sha256(data).hexdigest()
    registry: Registry[CheckpointInfo] = Registry("model")
    registry.register("Fake", CheckpointInfo(name="Fake", sha256=sha, url="https://example.invalid/x/fake.pt"))
    monkeypatch.setattr(listing, "MODELS", registry)
    row = describe_models(cache_dir=tmp_path)[0]
    assert (row["cached"], row["verified"]) == (False, False)
    target = tmp_path / "checkpoints" / "fake.pt"
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    row = describe_models(cache_dir=tmp_path)[0]
    assert (row["cached"], row["verified"]) == (True, False)  # placed by hand, never hashed yet
    assert is_verified(target, sha)
    row = describe_models(cache_dir=tmp_path)[0]
    assert (row["cached"], row["verified"]) == (True, True)


@pytest.mark.peer
def test_data_parallel_prefix_and_wrapper_are_unwrapped(tmp_path):
    ref = make_reference(SMALL_CONFIGS["small-vit"], seed=8)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "wrapped.pt")
    model = clipbench.load_model(tmp_path / "wrapped.pt")
    tokens = clipbench.tokenize(["a diagram"])
    with torch.inference_mode():
        assert torch.allclose(model.encode_text(tokens), ref.encode_text(tokens), rtol=0, atol=1e-5)


def test_extra_tensors_are_rejected_by_name(tmp_path):
    state = make_reference(SMALL_CONFIGS["small-vit"], seed=9).state_dict()
    state["visual.extra_head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(ClipbenchError, match=r"keys an OpenAI CLIP model does not: visual\.extra_head\.weight"):
        clipbench.load_model(tmp_path / "extra.pt")
