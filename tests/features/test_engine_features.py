"""Feature store and extraction: cache hits, resume after interruption, corruption, NaN, text cache."""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import pytest
import torch
from _engine_fixtures import FakeModel, make_split

import clipbench
from clipbench.features import (
    FORWARD_STATS,
    STORE_SCHEMA,
    FeatureKey,
    FeatureStore,
    NonFiniteFeaturesError,
    extract_features,
    extract_range,
    feature_key,
)
from clipbench.features.text_classifier import build_text_classifier, text_classifier
from clipbench.foundations.errors import ClipbenchError


def _direct_features(model, split, projected=True):
    ds = split.torch_dataset(model.preprocess)
    images = torch.stack([ds[i][0] for i in range(len(split))])
    return model.encode_image(images, projected=projected).numpy()


def test_extract_then_cache_hit_does_no_forward(tmp_path):
    model, split = FakeModel(), make_split(37)
    store = FeatureStore(tmp_path)
    first = extract_features(model, split, store, batch_size=5, shard_size=10, progress=False)
    np.testing.assert_allclose(first.features, _direct_features(model, split), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(first.labels, split.labels)
    key = feature_key(model, split, batch_size=5)
    assert [(s.start, s.end) for s in store.plan(key)[0]] == [(0, 10), (10, 20), (20, 30), (30, 37)]

    calls = model.image_calls
    second = extract_features(model, split, store, batch_size=5, shard_size=10, progress=False)
    assert model.image_calls == calls  # no image-encoder forward pass at all
    np.testing.assert_array_equal(first.features, second.features)

    pre = extract_features(model, split, store, projected=False, batch_size=8, progress=False)
    assert pre.features.shape == (37, 16) and model.image_calls > calls  # a different key


def test_key_changes_with_everything_that_changes_numbers():
    model, split = FakeModel(), make_split(20)
    base = feature_key(model, split)
    assert feature_key(FakeModel(seed=1), split).digest != base.digest
    assert feature_key(model, split, projected=False).digest != base.digest
    assert feature_key(model, split, precision="bf16").digest != base.digest
    assert feature_key(model, split.subset(range(10), "limit=10:seed=0")).digest != base.digest
    assert feature_key(model, make_split(20, seed=2)).digest != base.digest  # other labels


def test_interrupted_extraction_resumes_identically(tmp_path, monkeypatch):
    model, split = FakeModel(), make_split(40)
    store = FeatureStore(tmp_path / "a")
    reference = extract_features(model, split, store, batch_size=4, shard_size=8, progress=False).features

    resumed_store = FeatureStore(tmp_path / "b")
    FORWARD_STATS.reset()
    monkeypatch.setenv("CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES", "5")  # shards [0,8), [8,16) complete, then stop
    with pytest.raises(KeyboardInterrupt):
        extract_features(model, split, resumed_store, batch_size=4, shard_size=8, progress=False)
    monkeypatch.delenv("CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES")
    key = feature_key(model, split, batch_size=4)
    assert not resumed_store.is_complete(key)
    cover, gaps = resumed_store.plan(key)
    assert [(s.start, s.end) for s in cover] == [(0, 8), (8, 16)] and gaps == [(16, 40)]

    FORWARD_STATS.reset()
    out = extract_features(model, split, resumed_store, batch_size=4, shard_size=8, progress=False)
    assert FORWARD_STATS.samples == 24  # only the missing samples were recomputed
    np.testing.assert_array_equal(out.features, reference)


def test_corrupt_and_truncated_shards_are_recomputed(tmp_path, caplog):
    model, split = FakeModel(), make_split(30)
    store = FeatureStore(tmp_path)
    reference = extract_features(model, split, store, batch_size=5, shard_size=10, progress=False).features
    shards = store.entry_dir(feature_key(model, split, batch_size=5)) / "shards"
    victim = shards / "0000000010-0000000020.npz"
    data = bytearray(victim.read_bytes())
    data[-40] ^= 0xFF  # flip a byte, same size
    victim.write_bytes(bytes(data))
    FORWARD_STATS.reset()
    with caplog.at_level(logging.WARNING):
        out = extract_features(model, split, store, batch_size=5, shard_size=10, progress=False)
    assert "SHA-256 mismatch" in caplog.text
    assert FORWARD_STATS.samples == 10
    np.testing.assert_array_equal(out.features, reference)

    truncated = shards / "0000000020-0000000030.npz"
    truncated.write_bytes(truncated.read_bytes()[:50])
    FORWARD_STATS.reset()
    out = extract_features(model, split, store, batch_size=5, shard_size=10, progress=False)
    assert FORWARD_STATS.samples == 10
    np.testing.assert_array_equal(out.features, reference)


def test_ranges_written_separately_assemble_in_order(tmp_path):
    """What a torchrun rank does: extract its own index range; one process assembles."""
    model, split = FakeModel(), make_split(23)
    store = FeatureStore(tmp_path)
    key = feature_key(model, split, batch_size=4)
    extract_range(model, split, store, key, 12, 23, batch_size=4, shard_size=6, progress=False)
    with pytest.raises(Exception, match="no complete shard"):
        store.assemble(key)
    extract_range(model, split, store, key, 0, 12, batch_size=4, shard_size=6, progress=False)
    assert extract_range(model, split, store, key, 0, 12, batch_size=4, shard_size=6, progress=False) == []
    store.assemble(key)
    loaded = store.load(key, split.labels)
    np.testing.assert_allclose(loaded.features, _direct_features(model, split), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loaded.labels, split.labels)


def test_nan_features_are_an_error_and_never_stored(tmp_path):
    model, split = FakeModel(nan=True), make_split(10)
    store = FeatureStore(tmp_path)
    with pytest.raises(NonFiniteFeaturesError, match="NaN/Inf"):
        extract_features(model, split, store, batch_size=5, progress=False)
    assert store.plan(feature_key(model, split, batch_size=5))[0] == []


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(ClipbenchError, match="needs a CUDA device"):
        extract_features(FakeModel(), make_split(10), FeatureStore(tmp_path), precision="fp16", progress=False)


def test_cache_list_and_clear(tmp_path):
    store = FeatureStore(tmp_path)
    extract_features(FakeModel(), make_split(10), store, batch_size=5, progress=False)
    (entry,) = store.entries()
    assert entry.complete and entry.size_bytes > 0 and entry.key["dataset"] == "fake10"
    assert store.clear() == entry.size_bytes
    assert store.entries() == []


def test_text_classifier_matches_per_class_loop_and_is_cached(tmp_path):
    model = FakeModel()
    prompts = [["a photo of a cat.", "a cat."], ["a dog.", "photo of a dog", "dog!"], ["car"]]
    weights = build_text_classifier(model, prompts, batch_size=2)
    for c, class_prompts in enumerate(prompts):  # direct per-class computation
        emb = model.encode_text(model.tokenize(class_prompts))
        emb = emb / emb.norm(dim=-1, keepdim=True)
        mean = emb.mean(0)
        torch.testing.assert_close(torch.from_numpy(weights[c]), mean / mean.norm())
    cached = text_classifier(model, prompts, tmp_path)
    model.encode_text = None  # a cache hit must not encode text
    torch.testing.assert_close(text_classifier(model, prompts, tmp_path), cached)
    torch.testing.assert_close(cached, weights)


def test_batch_size_and_device_type_join_the_key_and_the_schema_is_3():
    """Batch size moves float bits (batched kernels), so a cached entry is exactly what the same command
    would compute from scratch: a run with another --batch-size never scores the first run's features."""
    model, split = FakeModel(), make_split(20)
    base = feature_key(model, split, batch_size=4)
    assert base.schema == STORE_SCHEMA == 3 and base.batch_size == 4 and base.device == "cpu"
    assert feature_key(model, split, batch_size=8).digest != base.digest
    assert FeatureKey(**{**asdict(base), "device": "cuda"}).digest != base.digest
    for old in (1, 2):  # old entries (2: labels inside the shards) are not reused
        assert FeatureKey(**{**asdict(base), "schema": old}).digest != base.digest


def test_features_carry_their_provenance_and_another_batch_size_reextracts(tmp_path):
    model, split = FakeModel(), make_split(20)
    store = FeatureStore(tmp_path)
    first = extract_features(model, split, store, batch_size=4, shard_size=8, progress=False)
    prov = first.provenance
    assert prov["batch_size"] == 4 and prov["precision"] == "fp32" and prov["device"] == "cpu"
    assert prov["torch_threads"] == torch.get_num_threads() and prov["torch"] == torch.__version__
    assert prov["clipbench"] == clipbench.__version__
    FORWARD_STATS.reset()
    assert extract_features(model, split, store, batch_size=4, progress=False).provenance == prov  # from the manifest
    assert FORWARD_STATS.batches == 0
    other = extract_features(model, split, store, batch_size=1, progress=False)
    assert FORWARD_STATS.samples == 20 and other.provenance["batch_size"] == 1  # not the batch-4 features


def test_provenance_of_a_resumed_entry_lists_every_setting_its_shards_were_made_with(tmp_path, monkeypatch):
    model, split = FakeModel(), make_split(16)
    store = FeatureStore(tmp_path)
    threads = torch.get_num_threads()
    monkeypatch.setenv("CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES", "2")  # shard [0, 8) complete, then stop
    FORWARD_STATS.reset()
    with pytest.raises(KeyboardInterrupt):
        extract_features(model, split, store, batch_size=4, shard_size=8, progress=False)
    monkeypatch.delenv("CLIPBENCH_TEST_INTERRUPT_AFTER_BATCHES")
    torch.set_num_threads(threads + 1)
    try:
        resumed = extract_features(model, split, store, batch_size=4, shard_size=8, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert resumed.provenance["torch_threads"] == [threads, threads + 1]
    assert resumed.provenance["batch_size"] == 4
