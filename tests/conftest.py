"""Test-wide guarantees: tests never touch the user's cache or data dirs and never leave loopback."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

# Hugging Face libraries must never reach a hub from a test.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
