"""Nothing planted in a data root runs or fills the disk: CIFAR batches are read with a restricted
unpickler, no dataset loader unpickles through numpy, and archive extraction stops at a size limit."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from _datasets_fixtures import cifar10_tree, serve

import clipbench.datasets
from clipbench.datasets import Archive, download_dataset, get_dataset
from clipbench.datasets.download import MAX_RATIO, extract_archive
from clipbench.foundations.errors import ClipbenchError, DataError


class _Planted:
    """Unpickling this runs ``touch MARKER`` (what a hostile batch file would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_a_planted_cifar_batch_runs_nothing_and_is_one_line(tmp_path, protocol):
    data_root, marker = tmp_path / "data", tmp_path / "MARKER"
    labels = cifar10_tree(data_root / "cifar10")
    adapter = get_dataset("cifar10")
    np.testing.assert_array_equal(adapter.load_split("test", data_root).labels, labels["test"])  # real batches read
    batch = data_root / "cifar10" / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [_Planted(marker)]},
                                   protocol=protocol))
    with pytest.raises(ClipbenchError) as caught:
        adapter.load_split("test", data_root)
    assert not marker.exists()
    message = str(caught.value)
    assert "\n" not in message and str(batch) in message and "system" in message


def test_numpy_arrays_of_every_pickle_protocol_still_read(tmp_path):
    from clipbench.datasets.safe_pickle import load

    arrays = {"data": np.arange(12, dtype=np.uint8).reshape(3, 4), "labels": [1, 2, 3], "names": {"a", "b"}}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        got = load(io.BytesIO(pickle.dumps(arrays, protocol=protocol)), "x")
        np.testing.assert_array_equal(got["data"], arrays["data"])
        assert got["labels"] == [1, 2, 3] and got["names"] == {"a", "b"}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield node, node.func.attr, ast.unparse(node.func.value)


def test_no_dataset_loader_unpickles_with_pickle_or_numpy():
    offenders = []
    for path in sorted(Path(clipbench.datasets.__file__).parent.glob("*.py")):
        for node, attr, owner in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if owner == "pickle" and attr in ("load", "loads", "Unpickler"):
                offenders.append(f"{path.name}:{node.lineno} pickle.{attr}")
            if owner in ("np", "numpy") and attr == "load" and keywords.get("allow_pickle") != "False":
                offenders.append(f"{path.name}:{node.lineno} np.load without allow_pickle=False")
    assert offenders == []


def _zeros_tgz(path: Path, n_bytes: int) -> str:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/zeros.bin")
        info.size = n_bytes
        tar.addfile(info, io.BytesIO(bytes(n_bytes)))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_an_archive_that_unpacks_past_its_datasets_size_stops_with_one_line(tmp_path):
    served, data_root = tmp_path / "served", tmp_path / "data"
    served.mkdir()
    size = (MAX_RATIO + 5) << 20  # zeros: a few KB of archive, more than MAX_RATIO times that unpacked
    md5 = _zeros_tgz(served / "cifar-10-python.tar.gz", size)
    with serve(served) as base:
        adapter = dataclasses.replace(get_dataset("cifar10"),
                                      downloads=(Archive(f"{base}/cifar-10-python.tar.gz", md5),))
        with pytest.raises(DataError) as caught:
            download_dataset(adapter, data_root)
    assert "\n" not in str(caught.value) and "cifar-10-python.tar.gz unpacks to more than" in str(caught.value)
    assert not (data_root / "cifar10").exists() and not list(data_root.glob(".cifar10.partial-*"))


def test_a_declared_unpacked_size_is_the_limit(tmp_path):
    archive = tmp_path / "a.tar.gz"
    _zeros_tgz(archive, 3 << 20)
    assert Archive("http://x/a.tar.gz", "0" * 32, unpacked_bytes=1 << 20).extract_limit(archive) < 3 << 20
    with pytest.raises(DataError, match="unpacks to more than"):
        extract_archive(archive, tmp_path / "out", Archive("http://x/a.tar.gz", "0", unpacked_bytes=1 << 20
                                                           ).extract_limit(archive))
    extract_archive(archive, tmp_path / "ok", Archive("http://x/a.tar.gz", "0", unpacked_bytes=3 << 20
                                                      ).extract_limit(archive))
    assert (tmp_path / "ok" / "cifar-10-batches-py" / "zeros.bin").stat().st_size == 3 << 20


def test_a_zip_with_a_symlink_member_is_one_line_and_unpacks_nothing(tmp_path):
    """A zip member whose mode says symlink (as ``zip --symlinks`` writes it) is refused by name (issue 27)."""
    import zipfile

    from clipbench.datasets.download import extract_archive
    from clipbench.foundations.errors import DataError

    archive = tmp_path / "planted.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/ok.txt", "fine")
        link = zipfile.ZipInfo("data/escape")
        link.external_attr = (0o120777 << 16)  # S_IFLNK | 0777
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DataError, match="symlink member .*data/escape") as info:
        extract_archive(archive, tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out" / "data").exists()


def test_a_full_disk_during_extraction_is_one_line_naming_the_archive(tmp_path, monkeypatch):
    """ENOSPC while unpacking (injected: this machine's disk cannot be filled in a test) is a DataError that
    names the archive and the folder, not a traceback (issue 27)."""
    import errno
    import zipfile

    from clipbench.datasets.download import extract_archive
    from clipbench.foundations.errors import DataError

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data/a.txt", "x" * 100)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "extractall", full)
    with pytest.raises(DataError, match=r"cannot unpack .*set\.zip into .*out: No space left on device \(the disk is full\)"):
        extract_archive(archive, tmp_path / "out")
