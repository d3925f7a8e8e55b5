"""Test-wide guarantees: tests never touch the user's cache or data dirs and never leave loopback, and every
test that starts another process carries the ``subprocess`` marker (the tiers are declared in pyproject.toml)."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

# Hugging Face libraries must never reach a hub from a test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


#: What makes a test ``subprocess``: another interpreter (each imports torch again), torchrun, a browser. Cheap
#: tools are not counted: the engine asks git for every record's commit, and libraries ask uname or ldconfig.
_STARTUP_COST = re.compile(r"(python[0-9.]*|torchrun|chromium(-browser)?|chrome|clipbench)(\.exe)?")


def _costly(program: str) -> bool:
    return bool(_STARTUP_COST.fullmatch(Path(program).name)) or os.path.realpath(program) == os.path.realpath(
        sys.executable)


@pytest.fixture(autouse=True)
def _subprocess_marked(request, monkeypatch):
    """A test that starts another interpreter, torchrun or a browser without ``@pytest.mark.subprocess`` errors
    at teardown, so the fast tier (``-m "not slow and not subprocess"``) stays fast. The process still runs: the
    test's own verdict is unchanged, and code under test that catches exceptions cannot hide the start."""
    if request.node.get_closest_marker("subprocess"):
        yield
        return
    started: list[str] = []
    real_init, test_thread = subprocess.Popen.__init__, threading.get_ident()

    def recording_init(self, args, *rest, **kwargs):
        if isinstance(args, (str, bytes)):  # a command line (shell=True) or a bare program
            first = os.fsdecode(args).split()[0] if args.strip() else ""
        else:
            first = os.fsdecode(args if isinstance(args, os.PathLike) else args[0])
        program = os.fsdecode(kwargs.get("executable") or first)
        if threading.get_ident() == test_thread and _costly(program):  # not a library's background thread
            started.append(Path(program).name)
        real_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", recording_init)
    yield
    if started:
        pytest.fail(f"started {sorted(set(started))} without @pytest.mark.subprocess (pytestmark or a decorator)",
                    pytrace=False)


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
    else:  # AF_UNIX paths and the like are local by definition
        return True
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname other than localhost would need DNS: not allowed


@pytest.fixture(autouse=True, scope="session")
def _loopback_only():
    """Any connection to a non-loopback address fails loudly instead of hanging or leaking."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded(self, address, _real=real_connect):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise OSError(f"test tried to reach {address!r}: tests may only use 127.0.0.1")
        return _real(self, address)

    def guarded_ex(self, address, _real=real_connect_ex):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise OSError(f"test tried to reach {address!r}: tests may only use 127.0.0.1")
        return _real(self, address)

    socket.socket.connect = guarded
    socket.socket.connect_ex = guarded_ex
    try:
        yield
    finally:
        socket.socket.connect = real_connect
        socket.socket.connect_ex = real_connect_ex


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Default cache and data dirs point into a temporary folder; tests pass explicit paths anyway."""
    base = tmp_path_factory.mktemp("clipbench-home")
    monkeypatch.setenv("CLIPBENCH_CACHE", str(base / "cache"))
    monkeypatch.setenv("CLIPBENCH_DATA", str(base / "data"))
    monkeypatch.delenv("CLIPBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("CLIPBENCH_DEBUG", raising=False)


@pytest.fixture(scope="session")
def shapes_data_root(tmp_path_factory):
    """A data root holding the generated shapes test split (and so shapes_compositional), made once per session
    for the retrieval, selection and per-sample tests; they only read it."""
    from clipbench.datasets import get_dataset

    root = tmp_path_factory.mktemp("shapes-data")
    get_dataset("shapes").load_split("test", root)
    return root
