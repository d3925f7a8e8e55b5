"""Labels belong to the split, not to the feature store: shards hold features only (store schema 3)."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict

import numpy as np
import pytest
import torch
from _engine_fixtures import FakeModel
from PIL import Image

from clipbench.cli import main
from clipbench.datasets.images import FileSplit
from clipbench.features import FORWARD_STATS, FeatureKey, FeatureStore, extract_features, feature_key
from clipbench.features.arrays import write_verified_arrays
from clipbench.foundations.fileio import atomic_write_json, sha256_bytes

N = 12


@pytest.fixture
def folder(tmp_path):
    """Twelve 8x8 PNGs: one image folder that two label assignments read."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    root.mkdir()
    for i in range(N):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "RGB").save(root / f"img_{i:02d}.png")
    return root


def _split(folder, labels) -> FileSplit:
    return FileSplit("pets", "test", sorted(folder.glob("*.png")), labels, root=folder)


def _direct(model, split) -> np.ndarray:
    ds = split.torch_dataset(model.preprocess)
    return model.encode_image(torch.stack([ds[i][0] for i in range(len(split))])).numpy()


def _shard_arrays(store: FeatureStore, key: FeatureKey) -> list[list[str]]:
    out = []
    for path in sorted((store.entry_dir(key) / "shards").glob("*.npz")):
        with np.load(path, allow_pickle=False) as npz:
            out.append(sorted(npz.files))
    return out


def test_shards_hold_no_labels_and_each_split_gets_its_own_labels(folder, tmp_path):
    model, store = FakeModel(), FeatureStore(tmp_path / "cache" / "features")
    a = _split(folder, np.arange(N) % 3)  # same images, two label assignments
    b = _split(folder, (np.arange(N) + 1) % 4)
    assert a.fingerprint != b.fingerprint
    key_a, key_b = feature_key(model, a, batch_size=4), feature_key(model, b, batch_size=4)
    assert key_a.digest != key_b.digest

    fa = extract_features(model, a, store, batch_size=4, shard_size=8, progress=False)
    fb = extract_features(model, b, store, batch_size=4, shard_size=8, progress=False)
    assert sorted(e.path for e in store.entries()) == sorted([store.entry_dir(key_a), store.entry_dir(key_b)])
    assert _shard_arrays(store, key_a) == _shard_arrays(store, key_b) == [["features"], ["features"]]
    np.testing.assert_array_equal(fa.labels, a.labels)
    np.testing.assert_array_equal(fb.labels, b.labels)
    np.testing.assert_allclose(fa.features, _direct(model, a), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fa.features, fb.features)  # the same images, so the same numbers

    FORWARD_STATS.reset()  # cache hits, in either order: each set still carries its own split's labels
    again_b = extract_features(model, b, store, batch_size=4, shard_size=8, progress=False)
    again_a = extract_features(model, a, store, batch_size=4, shard_size=8, progress=False)
    assert FORWARD_STATS.batches == 0
    np.testing.assert_array_equal(again_a.labels, a.labels)
    np.testing.assert_array_equal(again_b.labels, b.labels)
    assert store.load(key_a).labels is None  # without the split there are no labels to give
    with pytest.raises(ValueError, match="labels for 12 samples"):
        store.load(key_a, a.labels[:-1])


def _write_schema2_entry(store: FeatureStore, key: FeatureKey, features: np.ndarray, labels: np.ndarray) -> None:
    """An entry exactly as clipbench wrote it with store schema 2: features and labels in each shard."""
    entry = store.entry_dir(key)
    meta = write_verified_arrays(entry / "shards" / f"{0:010d}-{N:010d}.npz", features=features, labels=labels)
    info = {"start": 0, "end": N, "size": meta["size"], "sha256": meta["sha256"], "dim": features.shape[1],
            "provenance": {"batch_size": key.batch_size}}
    atomic_write_json(entry / "shards" / f"{0:010d}-{N:010d}.json", info)
    atomic_write_json(entry / "key.json", asdict(key))
    atomic_write_json(entry / "manifest.json", {"key": asdict(key), "n_samples": N, "dim": features.shape[1],
                                                "provenance": info["provenance"], "shards": [info]})


def test_an_entry_of_the_old_schema_is_never_served_but_listed_and_cleared(folder, tmp_path, capsys):
    model, split = FakeModel(), _split(folder, np.arange(N) % 3)
    cache = tmp_path / "cache"
    store = FeatureStore(cache / "features")
    key = feature_key(model, split, batch_size=4)
    old_key = FeatureKey(**{**asdict(key), "schema": 2})
    stale = np.full((N, 8), 7.0, np.float32)  # not what the model computes: served, the test would see it
    _write_schema2_entry(store, old_key, stale, (np.arange(N) + 1) % 3)

    FORWARD_STATS.reset()
    fresh = extract_features(model, split, store, batch_size=4, progress=False)
    assert FORWARD_STATS.samples == N  # recomputed under its own (schema 3) key
    np.testing.assert_allclose(fresh.features, _direct(model, split), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fresh.labels, split.labels)
    with pytest.raises(ValueError, match="schema 2"):
        store.load(old_key, split.labels)  # refused, not half-read

    schemas = sorted(e.key["schema"] for e in store.entries())
    assert schemas == [2, 3] and all(e.complete for e in store.entries())
    capsys.readouterr()
    assert main(["cache", "list", "--cache-dir", str(cache)]) == 0
    listed = capsys.readouterr().out
    rows = [line.split() for line in listed.splitlines() if line.startswith("features ")]
    assert sorted(r[-1] for r in rows) == sorted(str(e.path) for e in store.entries()) and len(rows) == 2
    assert sum("stale (schema 2; unused)" in line for line in listed.splitlines()) == 1
    assert main(["cache", "clear", "--only", "features", "--cache-dir", str(cache)]) == 0
    assert store.entries() == []


def test_a_shard_with_labels_inside_a_current_entry_is_recomputed(folder, tmp_path, caplog):
    """A file of another layout that passes its checksum (copied in by hand) is damaged, not half-read."""
    model, split = FakeModel(), _split(folder, np.arange(N) % 3)
    store = FeatureStore(tmp_path)
    reference = extract_features(model, split, store, batch_size=4, shard_size=8, progress=False)
    key = feature_key(model, split, batch_size=4)
    shards = store.entry_dir(key) / "shards"
    sidecar = shards / f"{8:010d}-{N:010d}.json"
    buffer = io.BytesIO()
    np.savez(buffer, features=reference.features[8:], labels=split.labels[8:])
    (shards / f"{8:010d}-{N:010d}.npz").write_bytes(buffer.getvalue())
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "size": len(buffer.getvalue()), "sha256": sha256_bytes(buffer.getvalue())}))
    manifest = json.loads((store.entry_dir(key) / "manifest.json").read_text())
    manifest["shards"][1] = json.loads(sidecar.read_text())
    (store.entry_dir(key) / "manifest.json").write_text(json.dumps(manifest))

    FORWARD_STATS.reset()
    with caplog.at_level(logging.WARNING):
        out = extract_features(model, split, store, batch_size=4, shard_size=8, progress=False)
    assert "another layout" in caplog.text and FORWARD_STATS.samples == N - 8
    np.testing.assert_array_equal(out.features, reference.features)
    assert _shard_arrays(store, key) == [["features"], ["features"]]
