"""A local checkpoint's SHA-256 is remembered by the data files' manifest rule (path, size, mtime, ctime,
inode): a warm rerun does not re-read the file, any change the rule sees re-hashes it, ``--verify-data``
always reads it."""

from __future__ import annotations

import hashlib
import os
import shutil
import time

import pytest

import clipbench.foundations.file_identity as file_identity
from clipbench.foundations.file_identity import cached_sha256
from clipbench.models.checkpoint_file import file_sha256
from clipbench.models.description import DescribedModel
from clipbench.models.loading import load_model
from clipbench.models.registry import MODELS


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Every full read of a file's bytes by the hash cache."""
    seen: list[str] = []
    real = file_identity.sha256_file

    def counting(path):
        seen.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(file_identity, "sha256_file", counting)
    return seen


def _rewrite_keeping_size_and_mtime(path, data: bytes) -> None:
    before = path.stat()
    time.sleep(0.05)  # past the file system's timestamp tick, so the rewrite gets a new ctime
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as rsync -t and cp -p do
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert after.st_ctime_ns != before.st_ctime_ns  # only ctime tells: the case this rule exists for


def test_the_hash_is_served_while_the_file_is_unchanged_and_recomputed_when_its_bytes_change(tmp_path, reads):
    path, records = tmp_path / "weights.pt", tmp_path / "records"
    path.write_bytes(b"a" * 4096)
    assert cached_sha256(path, records) == hashlib.sha256(b"a" * 4096).hexdigest()
    assert cached_sha256(path, records) == hashlib.sha256(b"a" * 4096).hexdigest()
    assert reads == [str(path)]  # the second answer came from the record

    _rewrite_keeping_size_and_mtime(path, b"b" * 4096)
    assert cached_sha256(path, records) == hashlib.sha256(b"b" * 4096).hexdigest()
    assert len(reads) == 2
    assert cached_sha256(path, records, verify=True) == hashlib.sha256(b"b" * 4096).hexdigest()
    assert len(reads) == 3  # --verify-data reads the bytes even of an unchanged file


def test_a_file_moved_over_another_is_hashed_again(tmp_path, reads):
    path, other, records = tmp_path / "weights.pt", tmp_path / "other.pt", tmp_path / "records"
    path.write_bytes(b"a" * 100)
    other.write_bytes(b"b" * 100)
    shutil.copystat(path, other)  # the same size and mtime: only the inode (and ctime) differ
    cached_sha256(path, records)
    os.replace(other, path)
    assert cached_sha256(path, records) == hashlib.sha256(b"b" * 100).hexdigest()
    assert len(reads) == 2


def test_an_unwritable_record_folder_only_costs_a_re_hash(tmp_path, reads):
    path, blocker = tmp_path / "weights.pt", tmp_path / "records"
    path.write_bytes(b"a" * 10)
    blocker.write_text("a file where the folder would be")
    assert cached_sha256(path, blocker) == cached_sha256(path, blocker) == hashlib.sha256(b"a" * 10).hexdigest()
    assert len(reads) == 2


def test_a_warm_load_of_a_local_checkpoint_reads_its_bytes_once(tmp_path, reads):
    checkpoint, cache = tmp_path / "tiny.pt", tmp_path / "cache"
    shutil.copy(MODELS.get("clipbench-tiny").package_path(), checkpoint)
    built = load_model(str(checkpoint), cache_dir=cache, lazy=True)
    assert reads.count(str(checkpoint)) == 1
    warm = load_model(str(checkpoint), cache_dir=cache, lazy=True)
    assert isinstance(warm, DescribedModel) and warm.weights_sha256 == built.weights_sha256
    assert reads.count(str(checkpoint)) == 1  # served from the record
    load_model(str(checkpoint), cache_dir=cache, lazy=True, verify_data=True)
    assert reads.count(str(checkpoint)) == 2
    assert file_sha256(checkpoint, cache) == built.weights_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
