"""The packaged clipbench-tiny checkpoint: registered with its SHA-256, loaded like any other model,
in OpenAI's format (the reference implementation computes the same features), and far above chance
on the digits test split it never saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipbench.datasets import get_dataset
from clipbench.features.text_classifier import build_text_classifier
from clipbench.foundations.fileio import sha256_file
from clipbench.models import MODELS, load_model
from clipbench.models.checkpoints import PACKAGED_CHECKPOINTS
from clipbench.tasks.zeroshot import zeroshot
from clipbench.training.tiny import TINY_CONFIG

#: Zero-shot top-1 (%) of the shipped checkpoint on digits test, as measured when it was trained
#: (clipbench/assets/NOTICE.md); the checks below allow the 2-point band the issue asks for.
SHIPPED_ZEROSHOT_TOP1 = 66.12


@pytest.fixture(scope="module")
def tiny_model():
    return load_model("clipbench-tiny")


@pytest.fixture(scope="module")
def digits_test_features(tiny_model):
    split = get_dataset("digits").load_split("test")
    dataset = split.torch_dataset(tiny_model.preprocess)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return tiny_model.encode_image(images).numpy(), split.labels


def test_registered_as_a_packaged_checkpoint_whose_sha256_matches_the_file():
    info = MODELS.get("clipbench-tiny")
    assert info in PACKAGED_CHECKPOINTS
    assert info.url is None
    assert info.package_path().is_file()
    assert sha256_file(info.package_path()) == info.sha256
    assert (info.family, info.resolution, info.embed_dim) == ("ViT", 32, 64)
    assert info.package_path().stat().st_size < 8_000_000


def test_loads_through_the_ordinary_path_with_the_tiny_architecture(tiny_model):
    assert tiny_model.name == "clipbench-tiny"
    assert tiny_model.weights_sha256 == MODELS.get("clipbench-tiny").sha256
    assert tiny_model.module.config == TINY_CONFIG
    assert (tiny_model.family, tiny_model.image_resolution, tiny_model.embed_dim) == ("ViT", 32, 64)
    assert tiny_model.context_length == 77


@pytest.mark.peer
def test_is_an_openai_state_dict_that_the_reference_implementation_runs_identically(tiny_model):
    import clip.model as clip_model
    state_dict = torch.load(MODELS.get("clipbench-tiny").package_path(), weights_only=True)
    assert all(v.dtype == torch.float16 for v in state_dict.values())
    reference = clip_model.build_model(dict(state_dict)).float().eval()
    assert set(reference.state_dict()) == set(state_dict)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = tiny_model.tokenize(["a photo of the number seven.", "a drawing of the number two.", "3", ""])
    with torch.no_grad():
        torch.testing.assert_close(tiny_model.encode_image(images), reference.encode_image(images), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(tiny_model.encode_text(tokens), reference.encode_text(tokens), atol=1e-4, rtol=1e-4)


def test_zero_shot_on_the_unseen_digits_test_split_is_far_above_chance(tiny_model, digits_test_features):
    features, labels = digits_test_features
    adapter = get_dataset("digits")
    weights = build_text_classifier(tiny_model, adapter.class_prompts())
    result = zeroshot(features, labels, weights, n_bootstrap=0)
    top1 = result.metrics["top1"]
    assert top1 > 50.0  # chance is 10%
    assert abs(top1 - SHIPPED_ZEROSHOT_TOP1) < 2.0
    assert len(labels) == 797 and np.bincount(labels).min() > 70


@pytest.mark.slow
@pytest.mark.release
def test_full_retrain_from_scratch_reproduces_the_shipped_accuracies(tmp_path):
    """The documented `clipbench train-tiny` recipe, run in full, lands within 2 points of the shipped model.

    (On the CPU and torch build that trained it the file is byte-identical; elsewhere float
    reductions may differ, so the contract is the accuracy band, not the hash.)
    """
    from clipbench import linear_probe
    from clipbench.training.tiny import train_tiny

    out = tmp_path / "retrained.pt"
    train_tiny(out=out, progress=False)
    adapter = get_dataset("digits")
    accuracies = {}
    for name, model in (("shipped", load_model("clipbench-tiny")), ("retrained", load_model(str(out)))):
        splits = {}
        for split_name in ("train", "test"):
            split = adapter.load_split(split_name)
            data = split.torch_dataset(model.preprocess)
            with torch.inference_mode():
                images = torch.stack([data[i][0] for i in range(len(data))])
                splits[split_name] = (model.encode_image(images).numpy(), split.labels)
        weights = build_text_classifier(model, adapter.class_prompts())
        zs = zeroshot(*splits["test"], weights, n_bootstrap=0).metrics["top1"]
        probe = linear_probe(train=splits["train"], val=None, test=splits["test"], seed=0).top1
        accuracies[name] = (zs, probe)
    (zs_shipped, probe_shipped), (zs_new, probe_new) = accuracies["shipped"], accuracies["retrained"]
    assert abs(zs_shipped - SHIPPED_ZEROSHOT_TOP1) < 0.01
    assert abs(zs_new - zs_shipped) <= 2.0, accuracies
    assert abs(probe_new - probe_shipped) <= 2.0, accuracies
    assert probe_new > zs_new > 30.0, accuracies
