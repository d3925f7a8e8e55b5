"""Checkpoint downloads against a local HTTP server on 127.0.0.1: success, bad hash, truncation,
server errors, cached reuse without the network, offline mode, and load_model end to end."""

from __future__ import annotations

import hashlib

import pytest
import torch
from _http_fixtures import LoopbackServer
from _models_fixtures import SMALL_CONFIGS, make_reference

import clipbench.models.loading as loading
from clipbench.foundations.errors import ChecksumError, ClipbenchError, OfflineError
from clipbench.foundations.registry import Registry
from clipbench.models.checkpoints import CheckpointInfo
from clipbench.models.download import fetch, is_verified

GOOD = b"clipbench checkpoint bytes " * 4096
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    srv = LoopbackServer({"/files/model.pt": GOOD})
    yield srv
    srv.stop()


def _leftovers(directory):
    """Files other than lock files: what a failed download must not leave behind."""
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock")) if directory.exists() else []


def test_good_download_is_verified_and_placed(server, tmp_path):
    path = fetch(server.url("/files/model.pt"), GOOD_SHA, cache_dir=tmp_path)
    assert path == tmp_path / "checkpoints" / "model.pt"
    assert path.read_bytes() == GOOD
    assert _leftovers(path.parent) == ["model.pt", "model.pt.verified.json"]
    assert is_verified(path, GOOD_SHA)


def test_wrong_hash_is_discarded(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match=r"expected 0{64}.*discarded"):
        fetch(server.url("/files/model.pt"), wrong, cache_dir=tmp_path)
    assert _leftovers(tmp_path / "checkpoints") == []


def test_truncated_transfer_is_discarded(server, tmp_path):
    with pytest.raises(ClipbenchError, match=r"(interrupted|incomplete)") as info:
        fetch(server.url("/truncated/files/model.pt"), GOOD_SHA, filename="model.pt", cache_dir=tmp_path)
    assert server.url("/truncated/files/model.pt") in str(info.value)
    assert _leftovers(tmp_path / "checkpoints") == []


def test_server_error_names_url_and_status(server, tmp_path):
    with pytest.raises(ClipbenchError, match=r"HTTP 500") as info:
        fetch(server.url("/error/model.pt"), GOOD_SHA, cache_dir=tmp_path)
    assert server.url("/error/model.pt") in str(info.value)
    assert _leftovers(tmp_path / "checkpoints") == []


def test_cached_file_is_reused_without_network(server, tmp_path):
    url = server.url("/files/model.pt")
    first = fetch(url, GOOD_SHA, cache_dir=tmp_path)
    server.stop()
    assert fetch(url, GOOD_SHA, cache_dir=tmp_path) == first
    (first.parent / "model.pt.verified.json").unlink()  # without the sidecar it is re-hashed, still offline
    assert fetch(url, GOOD_SHA, cache_dir=tmp_path, offline=True) == first
    assert server.requests == ["/files/model.pt"]


def test_corrupted_cache_file_is_replaced(server, tmp_path):
    url = server.url("/files/model.pt")
    path = fetch(url, GOOD_SHA, cache_dir=tmp_path)
    path.write_bytes(b"garbage")  # size and mtime no longer match the sidecar -> re-hash -> mismatch
    assert fetch(url, GOOD_SHA, cache_dir=tmp_path).read_bytes() == GOOD
    assert len(server.requests) == 2


def test_corrupted_cache_file_offline_is_an_error(server, tmp_path):
    url = server.url("/files/model.pt")
    path = fetch(url, GOOD_SHA, cache_dir=tmp_path)
    path.write_bytes(b"garbage")
    with pytest.raises(OfflineError, match="wrong SHA-256"):
        fetch(url, GOOD_SHA, cache_dir=tmp_path, offline=True)
    assert not path.exists()


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_offline_mode_names_url_and_target(server, tmp_path, monkeypatch, how):
    url = server.url("/files/model.pt")
    if how == "environment":
        monkeypatch.setenv("CLIPBENCH_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        fetch(url, GOOD_SHA, cache_dir=tmp_path, offline=True if how == "argument" else None)
    message = str(info.value)
    assert url in message and str(tmp_path / "checkpoints" / "model.pt") in message
    assert server.requests == []


def test_cache_dir_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPBENCH_CACHE", str(tmp_path / "envcache"))
    path = fetch(server.url("/files/model.pt"), GOOD_SHA)
    assert path == tmp_path / "envcache" / "checkpoints" / "model.pt"


def test_load_model_downloads_registered_checkpoint_then_reuses_it(server, tmp_path, monkeypatch):
    """End to end: a registered name -> download -> verify -> build; then offline from the cache."""
    ref = make_reference(SMALL_CONFIGS["small-vit"], seed=11)
    checkpoint = tmp_path / "src.pt"
    torch.save(ref.state_dict(), checkpoint)
    data = checkpoint.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    server.files["/models/small.pt"] = data
    registry: Registry[CheckpointInfo] = Registry("model")
    registry.register("Small-ViT", CheckpointInfo(name="Small-ViT", sha256=sha, url=server.url("/models/small.pt")))
    monkeypatch.setattr(loading, "MODELS", registry)

    cache = tmp_path / "cache"
    model = loading.load_model("small_vit", cache_dir=cache)
    assert model.name == "Small-ViT" and model.weights_sha256 == sha
    server.stop()
    again = loading.load_model("Small-ViT", cache_dir=cache, offline=True)
    tokens = again.tokenize(["a photo of a cat"])
    assert torch.equal(model.encode_text(tokens), again.encode_text(tokens))
    assert server.requests == ["/models/small.pt"]
