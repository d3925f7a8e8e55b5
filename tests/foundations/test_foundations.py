"""Shared foundations: registry lookups, path resolution, atomic writes and locked appends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from clipbench.foundations.config import Paths, resolve_offline
from clipbench.foundations.errors import ClipbenchError, UnknownNameError
from clipbench.foundations.fileio import append_line_locked, atomic_open, atomic_write_json, sha256_file
from clipbench.foundations.registry import Registry, normalize_name


def test_registry_aliases_and_normalisation():
    reg: Registry[int] = Registry("model")
    reg.register("ViT-B/16", 1, aliases=("vitb16",))
    assert reg.get("vit-b-16") == 1 and reg.get("VIT_B_16") == 1 and reg.get("vitb16") == 1
    assert reg.canonical("vit b 16") == "ViT-B/16"
    assert normalize_name("ViT-L/14@336px") == "vit-l-14@336px"


def test_registry_rejects_duplicates_and_suggests():
    reg: Registry[int] = Registry("dataset")
    reg.register("cifar10", 1)
    reg.register("cifar100", 2)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("CIFAR10", 3)
    with pytest.raises(UnknownNameError, match="did you mean cifar10") as info:
        reg.get("cifar1O")
    assert "\n" not in str(info.value)


def test_paths_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPBENCH_CACHE", str(tmp_path / "env-cache"))
    assert Paths.resolve().cache_dir == tmp_path / "env-cache"
    assert Paths.resolve(cache_dir=tmp_path / "arg").cache_dir == tmp_path / "arg"
    monkeypatch.setenv("CLIPBENCH_OFFLINE", "1")
    assert resolve_offline(None) is True
    monkeypatch.setenv("CLIPBENCH_OFFLINE", "0")
    assert resolve_offline(None) is False and resolve_offline(True) is True


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write(b"half")
            raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_open_unwritable_dir_is_one_line_error(tmp_path):
    if os.geteuid() == 0:
        # root ignores directory permissions; use a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        target = blocker / "sub" / "out.txt"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "out.txt"
    with pytest.raises(ClipbenchError, match="cannot write") as info:
        atomic_write_json(target, {})
    assert "\n" not in str(info.value)


def test_sha256_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.subprocess
def test_append_line_locked_concurrent_processes_keep_every_line(tmp_path):
    target = tmp_path / "log.jsonl"
    script = textwrap.dedent(
        f"""
        import json, sys
        from clipbench.foundations.fileio import append_line_locked
        for i in range(200):
            append_line_locked({str(target)!r}, json.dumps({{"w": sys.argv[1], "i": i, "pad": "x" * 500}}))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)]) for w in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 600
    assert {(r["w"], r["i"]) for r in rows} == {(str(w), i) for w in range(3) for i in range(200)}


def test_append_line_locked_repairs_torn_last_line(tmp_path):
    target = tmp_path / "log.jsonl"
    target.write_text('{"ok": 1}\n{"torn": ')
    append_line_locked(target, '{"ok": 2}')
    lines = target.read_text().splitlines()
    assert lines[0] == '{"ok": 1}' and lines[-1] == '{"ok": 2}'
