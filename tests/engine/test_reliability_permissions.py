"""Files other users can read (issue 18, item 5): published files get 0666 minus the umask and folders
0777 minus the umask, as an ordinary ``open``/``mkdir`` would give, although they are written through
mkstemp/mkdtemp (0600/0700) and renamed into place.

Checked by the mode bits under two umasks, for what a real run, a report, a checkpoint download and a
dataset staging folder leave on disk.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from _datasets_fixtures import class_tree
from _engine_fixtures import write_tiny_clip
from _http_fixtures import LoopbackServer

from clipbench.cli import main
from clipbench.foundations.fileio import atomic_write_text
from clipbench.models.download import fetch


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _published(root: Path) -> tuple[list[Path], list[Path]]:
    """Files and folders under ``root``, without the hidden lock files beside them."""
    files, dirs = [], []
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") and path.name.endswith(".lock"):
            continue
        (dirs if path.is_dir() else files).append(path)
    return files, dirs


def test_current_umask_reads_without_changing_it(umask):
    from clipbench.foundations.fileio import current_umask

    assert current_umask() == umask
    assert current_umask() == umask


def test_atomic_write_and_temp_dir_use_the_ordinary_modes(tmp_path, umask):
    from clipbench.foundations.fileio import make_temp_dir

    atomic_write_text(tmp_path / "a.csv", "x\n")
    assert _mode(tmp_path / "a.csv") == 0o666 & ~umask
    staging = make_temp_dir(".partial-", tmp_path)
    assert _mode(staging) == 0o777 & ~umask


def test_run_report_and_cache_files_are_readable_by_others(tmp_path, umask, capsys):
    base = tmp_path / "in"
    base.mkdir()
    write_tiny_clip(base / "tiny.pt")
    class_tree(base / "pets", {"cat": 3, "dog": 3})
    results, cache = tmp_path / "results", tmp_path / "cache"
    assert main(["run", "--model", str(base / "tiny.pt"), "--suite", "zeroshot", "--device", "cpu",
                 "--no-progress", "--bootstrap", "0", "--dataset", f"folder:{base / 'pets'}",
                 "--cache-dir", str(cache), "--results-dir", str(results)]) == 0
    assert main(["report", str(results), "--no-published"]) == 0
    files, dirs = [], []
    for root in (results, cache):
        f, d = _published(root)
        files += f
        dirs += d
    names = {p.name for p in files}
    assert {"leaderboard.csv", "leaderboard_pivot.csv", "results.jsonl", "report.md", "report.html"} <= names
    assert any(p.suffix == ".npz" for p in files) and any(p.parent.parent == cache / "features" for p in files)
    wrong = {str(p): oct(_mode(p)) for p in files if _mode(p) != 0o666 & ~umask}
    assert not wrong, f"files not {oct(0o666 & ~umask)}: {wrong}"
    wrong = {str(p): oct(_mode(p)) for p in dirs if _mode(p) != 0o777 & ~umask}
    assert not wrong, f"folders not {oct(0o777 & ~umask)}: {wrong}"


def test_downloaded_checkpoint_is_readable_by_others(tmp_path, umask, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    payload = b"weights" * 1000
    server = LoopbackServer({"/w.pt": payload})
    try:
        path = fetch(server.url("/w.pt"), hashlib.sha256(payload).hexdigest(), filename="w.pt",
                     cache_dir=tmp_path / "cache")
    finally:
        server.stop()
    assert path.read_bytes() == payload
    assert _mode(path) == 0o666 & ~umask
