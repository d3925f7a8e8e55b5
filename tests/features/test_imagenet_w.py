"""ImageNet-W: imagenet1k's images with imagenet_w's watermark drawn inside the model's preprocessing, before
Normalize, as CLIP_benchmark builds ``imagenet-w``; its features and cache keys never meet ImageNet's."""

from __future__ import annotations

import dataclasses
import json
from importlib.metadata import version

import numpy as np
import pytest
import torch

from clipbench import api
from clipbench.datasets import get_dataset, load_split
from clipbench.features import FeatureStore
from clipbench.features.image_pipeline import GpuPipeline, PilPipeline
from clipbench.foundations.config import Paths
from clipbench.foundations.errors import ClipbenchError
from clipbench.models import load_model
from tests._fake_layouts_classic import _folders

N_CLASSES = 3


def _three_classes(name: str):
    """``name``'s adapter cut to its first 3 wnids, one template, no count (a 3-folder fake of ImageNet val)."""
    adapter = get_dataset(name)
    return dataclasses.replace(adapter, keys=adapter.keys[:N_CLASSES], classnames=adapter.classnames[:N_CLASSES],
                               templates=adapter.templates[:1], expected_count=0)


@pytest.fixture(scope="module")
def fake_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet-w")
    wnids = list(get_dataset("imagenet1k").keys[:N_CLASSES])
    _folders(root / "imagenet1k" / "val", wnids, 2, ".JPEG", "ILSVRC2012_val_")
    return root, wnids


@pytest.fixture(scope="module")
def tiny():
    return load_model("clipbench-tiny")


def test_registered_over_imagenet_val_with_imagenets_prompts():
    w, imagenet = get_dataset("imagenet-w"), get_dataset("imagenet1k")
    assert w.name == "imagenet_w" and w.folder == imagenet.folder and w.keys == imagenet.keys
    assert w.classnames == imagenet.classnames and w.templates == imagenet.templates and w.expected_count == 50_000


@pytest.mark.peer
def test_pixels_are_clip_benchmarks_imagenet_w(fake_val, tiny):
    """CLIP_benchmark 1.6.2's own ``imagenet-w`` (torchvision's ImageNet over the same folders, AddWatermark put
    into the transform by its builder) yields the very tensors clipbench's split gives the model."""
    from clip_benchmark.datasets.builder import build_dataset
    from torchvision.transforms import Compose

    root, wnids = fake_val
    peer_root = root / "imagenet1k"
    torch.save(({w: (w,) for w in wnids}, []), peer_root / "meta.bin")  # torchvision ImageNet's parsed devkit
    names = root / "classnames.json"
    names.write_text(json.dumps({"imagenet1k": wnids, "imagenet-w": wnids}))  # 1.6.2 reads imagenet-w's from here
    peer = build_dataset("imagenet-w", root=str(peer_root), transform=Compose(tiny.preprocess.transforms),
                         custom_classname_file=str(names))
    split = load_split(_three_classes("imagenet_w"), "val", root)
    ours = split.torch_dataset(PilPipeline(tiny).transform_for(split))
    plain = split.torch_dataset(PilPipeline(tiny).transform)
    assert len(peer) == len(ours) == 2 * N_CLASSES
    for i in range(len(ours)):
        assert peer[i][1] == ours[i][1] == split.labels[i]
        assert torch.equal(peer[i][0], ours[i][0])
        assert not torch.equal(ours[i][0], plain[i][0])  # the watermark really is drawn


def test_features_and_cache_keys_differ_from_imagenets(fake_val, tiny, tmp_path):
    root, _ = fake_val
    records = api.run(tiny, suite=None, tasks="zeroshot", datasets=[_three_classes("imagenet1k"),
                      _three_classes("imagenet_w")], data_root=root, cache_dir=tmp_path, write=False,
                      progress=False, bootstrap=0)
    by_name = {r["dataset"]: r for r in records}
    overlay = f"imagenet_w-{version('imagenet-w')}:AddWatermark(crop size)"  # the package version is in the key
    assert by_name["imagenet_w"]["data_identity"]["source"] == {"pixel_overlay": overlay}
    assert "source" not in by_name["imagenet1k"]["data_identity"]
    assert by_name["imagenet_w"]["dataset_fingerprint"] != by_name["imagenet1k"]["dataset_fingerprint"]
    entries = {e.key["dataset"]: e for e in FeatureStore(Paths.resolve(cache_dir=tmp_path).features_dir).entries()}
    assert sorted(entries) == ["imagenet1k", "imagenet_w"] and entries["imagenet1k"].path != entries["imagenet_w"].path
    features = {name: np.concatenate([np.load(f)["features"] for f in sorted(e.path.rglob("*.npz"))])
                for name, e in entries.items()}
    assert features["imagenet1k"].shape == features["imagenet_w"].shape == (2 * N_CLASSES, tiny.embed_dim)
    assert not np.allclose(features["imagenet1k"], features["imagenet_w"], atol=1e-4)


def test_limit_keeps_the_watermark_and_gpu_decoding_refuses_it(fake_val):
    split = load_split(_three_classes("imagenet_w"), "val", fake_val[0])
    sub = split.subset([0, 3], "limit=2")
    assert sub.pixel_overlay is split.pixel_overlay and sub.fingerprint_inputs["source"] == split.source
    with pytest.raises(ClipbenchError, match="--decode gpu cannot draw its pixel overlay"):
        GpuPipeline(32, "cpu").transform_for(split)
