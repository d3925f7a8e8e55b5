"""Damaged caches and unwritable or full disks.

Corrupt cache files (feature manifest and shard sidecars, text classifier, downloaded checkpoint)
are detected by their recorded size/SHA-256, recomputed or re-downloaded, with a warning. Shard
bytes flipped or truncated are covered in test_engine_features. A full disk or an unwritable
path stops with one line and leaves earlier results byte-identical.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os

import numpy as np
import pytest
import torch
from _engine_fixtures import FakeAdapter, FakeModel, make_split
from _fault_fixtures import SlowServer

import clipbench
import clipbench.foundations.fileio as fileio
from clipbench.cli import main
from clipbench.features import FORWARD_STATS, FeatureStore, extract_features, feature_key
from clipbench.features.text_classifier import text_classifier
from clipbench.foundations.errors import ClipbenchError
from clipbench.models.download import fetch
from clipbench.suites import parse_suite


def _extract(model, split, store):
    return extract_features(model, split, store, batch_size=5, shard_size=10, progress=False).features


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key"])
def test_damaged_manifest_is_rebuilt_from_verified_shards_without_forwards(tmp_path, caplog, damage):
    model, split = FakeModel(), make_split(30)
    store = FeatureStore(tmp_path)
    reference = _extract(model, split, store)
    manifest = store.entry_dir(feature_key(model, split, batch_size=5)) / "manifest.json"
    if damage == "garbage":
        manifest.write_bytes(b"\x00\xffnot json")
    elif damage == "truncated":
        manifest.write_bytes(manifest.read_bytes()[:40])
    else:  # a manifest copied from another entry
        doc = json.loads(manifest.read_text())
        doc["key"]["n_samples"] = 31
        manifest.write_text(json.dumps(doc))
    FORWARD_STATS.reset()
    with caplog.at_level(logging.WARNING):
        out = _extract(model, split, store)
    assert "cached features damaged" in caplog.text and "manifest.json" in caplog.text
    assert FORWARD_STATS.batches == 0  # every shard still verified, so nothing is encoded again
    np.testing.assert_array_equal(out, reference)


def test_damaged_shard_sidecar_of_an_unfinished_entry_recomputes_only_that_shard(tmp_path, caplog):
    model, split = FakeModel(), make_split(30)
    store = FeatureStore(tmp_path)
    reference = _extract(model, split, store)
    key = feature_key(model, split, batch_size=5)
    store.invalidate(key)  # as if killed before assembling
    (store.entry_dir(key) / "shards" / "0000000010-0000000020.json").write_text('{"start": 10, "end"')
    FORWARD_STATS.reset()
    with caplog.at_level(logging.WARNING):
        out = _extract(model, split, store)
    assert "0000000010-0000000020.npz is incomplete or damaged" in caplog.text
    assert FORWARD_STATS.samples == 10
    np.testing.assert_array_equal(out, reference)


def test_corrupt_shard_with_its_manifest_deleted_is_rehashed_and_recomputed(tmp_path, caplog):
    """Rebuilding a lost manifest re-checks every shard's SHA-256, so a flipped byte never goes back in."""
    model, split = FakeModel(), make_split(30)
    store = FeatureStore(tmp_path)
    reference = _extract(model, split, store)
    entry = store.entry_dir(feature_key(model, split, batch_size=5))
    victim = entry / "shards" / "0000000010-0000000020.npz"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size: only the checksum can tell
    victim.write_bytes(bytes(data))
    (entry / "manifest.json").unlink()
    FORWARD_STATS.reset()
    with caplog.at_level(logging.WARNING):
        out = _extract(model, split, store)
    assert "0000000010-0000000020.npz fails its SHA-256 check" in caplog.text
    assert FORWARD_STATS.samples == 10  # exactly the corrupt shard's samples
    np.testing.assert_array_equal(out, reference)
    FORWARD_STATS.reset()
    np.testing.assert_array_equal(_extract(model, split, store), reference)
    assert FORWARD_STATS.batches == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
def test_damaged_text_classifier_cache_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    """The prompts' features live in the verified feature store: a damaged shard is re-encoded with a
    warning naming it; a damaged manifest is rebuilt from the verified shards without encoding anything."""
    model, prompts = FakeModel(), [["a cat", "cat photo"], ["a dog"], ["a car"]]
    reference = text_classifier(model, prompts, tmp_path)
    (cached,) = (tmp_path / "texts").glob("*/shards/*.npz")  # the prompts' features, in the one text store
    if damage == "flip":
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0x01
        cached.write_bytes(bytes(data))
    elif damage == "truncate":
        cached.write_bytes(cached.read_bytes()[:-7])
    else:
        (cached.parents[1] / "manifest.json").write_text("{")
    calls = []
    real = model.encode_text
    model.encode_text = lambda tokens: calls.append(1) or real(tokens)
    with caplog.at_level(logging.WARNING):
        again = text_classifier(model, prompts, tmp_path)
    assert "cached text features damaged" in caplog.text
    broken = cached.parents[1] / "manifest.json" if damage == "manifest" else cached
    assert str(broken) in caplog.text  # the warning names the damaged file
    assert bool(calls) == (damage != "manifest")  # recomputed, not served; an intact shard is reused
    torch.testing.assert_close(again, reference, rtol=0, atol=0)
    model.encode_text = None  # and the rebuilt cache is good again
    torch.testing.assert_close(text_classifier(model, prompts, tmp_path), reference, rtol=0, atol=0)


def test_text_features_resume_shard_by_shard_and_equal_the_uncached_encoding(tmp_path, monkeypatch):
    """Texts are stored in shards: a lost shard re-encodes only its texts, and the cache returns exactly
    the bits an uncached encoding gives (the same length-sorted batches within each shard)."""
    from clipbench.features import text_store

    monkeypatch.setattr(text_store, "SHARD_TEXTS", 4)
    model = FakeModel()
    texts = [f"caption number {i} " + "word " * (i % 5) for i in range(10)]
    first = text_store.text_features(model, texts, tmp_path, batch_size=3)
    shards = sorted((tmp_path / "texts").glob("*/shards/*.npz"))
    assert [p.name for p in shards] == ["0000000000-0000000004.npz", "0000000004-0000000008.npz",
                                        "0000000008-0000000010.npz"]
    np.testing.assert_array_equal(first, text_store.encode_texts(model, texts, batch_size=3))
    for path in (shards[1], shards[1].with_suffix(".json"), shards[1].parents[1] / "manifest.json"):
        path.unlink()  # as if the run had been killed before this shard was written
    seen = []
    real = model.encode_text
    model.encode_text = lambda tokens: seen.append(len(tokens)) or real(tokens)
    again = text_store.text_features(model, texts, tmp_path, batch_size=3)
    assert sum(seen) == 4  # only the missing shard's texts
    np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_cached_checkpoint_is_downloaded_again_with_a_warning(tmp_path, caplog, damage, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    body = np.random.default_rng(2).bytes(100_000)
    server = SlowServer({"/m.pt": body})
    server.slow = False
    try:
        sha = hashlib.sha256(body).hexdigest()
        path = fetch(server.url("/m.pt"), sha, cache_dir=tmp_path)
        data = bytearray(path.read_bytes())
        if damage == "flip":
            data[50_000] ^= 0x01
        path.write_bytes(bytes(data) if damage == "flip" else bytes(data[:60_000]))
        with caplog.at_level(logging.WARNING):
            again = fetch(server.url("/m.pt"), sha, cache_dir=tmp_path)
        assert "does not have the expected SHA-256" in caplog.text
        assert again.read_bytes() == body and len(server.requests) == 2
    finally:
        server.stop()


# --- full or unwritable disks -------------------------------------------------------------------

ZS = parse_suite({"version": 1, "datasets": ["fakea"], "tasks": ["zeroshot"], "options": {"bootstrap": 50}},
                 "t", "zs", check_dataset=None)


def _run(tmp_path, model):
    return clipbench.run(model, suite=ZS, datasets=[FakeAdapter("fakea")], cache_dir=tmp_path / "cache",
                         results_dir=tmp_path / "res", device="cpu", progress=False)


def _snapshot(res):
    return {str(p.relative_to(res)): p.read_bytes() for p in res.rglob("*") if p.is_file() and not p.name.startswith(".")}


def _disk_full(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", fsync)


def test_disk_full_while_caching_features_is_one_line_and_keeps_results(tmp_path, monkeypatch):
    _run(tmp_path, FakeModel())
    before = _snapshot(tmp_path / "res")
    with monkeypatch.context() as m:
        _disk_full(m)
        with pytest.raises(ClipbenchError, match="^no space left on device while writing .*features") as info:
            _run(tmp_path, FakeModel(seed=3, name="second"))  # new features must be written
    assert "\n" not in str(info.value)
    assert _snapshot(tmp_path / "res") == before
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # no partial shard left behind
    (rec,) = _run(tmp_path, FakeModel(seed=3, name="second"))  # space freed: the rerun completes
    assert rec["model"] == "second"


def test_disk_full_while_appending_a_record_leaves_results_byte_identical(tmp_path, monkeypatch):
    _run(tmp_path, FakeModel())
    before = _snapshot(tmp_path / "res")
    with monkeypatch.context() as m:
        _disk_full(m)  # features and text classifier are cached: the first writes are the sample file and record
        with pytest.raises(ClipbenchError, match=r"no space left on device while writing .*(results\.jsonl|\.parquet)"):
            _run(tmp_path, FakeModel())
    assert _snapshot(tmp_path / "res") == before  # no torn or extra line


def _cli_run(tmp_path, capsys, **dirs):
    from _datasets_fixtures import class_tree
    from _engine_fixtures import write_tiny_clip

    ckpt = write_tiny_clip(tmp_path / "tiny.pt")
    class_tree(tmp_path / "pets", {"cat": 2, "dog": 2})
    argv = ["run", "--model", str(ckpt), "--suite", "zeroshot", "--dataset", f"folder:{tmp_path / 'pets'}",
            "--workers", "0", "--device", "cpu", "--no-progress",
            "--cache-dir", str(dirs.get("cache", tmp_path / "cache")),
            "--results-dir", str(dirs.get("res", tmp_path / "res"))]
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("which", ["cache", "res"])
def test_cli_file_in_place_of_a_directory_is_one_line_exit_2(tmp_path, capsys, which):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    code, err = _cli_run(tmp_path, capsys, **{which: blocker})
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"{blocker} is a file, expected a directory" in err


def test_cli_read_only_cache_is_one_line_exit_2_and_results_intact(tmp_path, capsys, monkeypatch):
    code, _ = _cli_run(tmp_path, capsys)
    assert code == 0
    before = _snapshot(tmp_path / "res")
    real = fileio.tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 (tempfile's name)
        if "cache2" in str(dir):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", mkstemp)
    code, err = _cli_run(tmp_path, capsys, cache=tmp_path / "cache2")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "cannot write" in err and "Read-only file system" in err
    assert _snapshot(tmp_path / "res") == before
