"""Offline means offline, for every source and every command (issue 18, item 4).

Each command runs in a fresh process whose ``sitecustomize`` installs a socket guard: any name lookup
of a non-local host or any connection to a non-loopback address is logged to a file and refused.
The Hugging Face offline variables that the test session sets are removed, so only clipbench's own
``--offline`` / ``CLIPBENCH_OFFLINE=1`` can keep the libraries off the network. A test passes only if
the guard logged nothing and the command ended with its normal exit code.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _fault_fixtures import subprocess_env
from PIL import Image

#: The Hugging Face libraries' own offline variables (huggingface_hub, datasets, transformers).
HF_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")

GUARD = '''
import ipaddress, os, socket

_LOG = os.environ["CLIPBENCH_TEST_SOCKET_LOG"]


def _local(host):
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(what):
    with open(_LOG, "a", encoding="utf-8") as fh:
        fh.write(what + "\\n")
    raise OSError(f"socket guard: {what} refused")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(f"connect {address!r}")
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(f"connect {address!r}")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _local(host if isinstance(host, str) else None):
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"lookup {host!r}\\n")
        raise socket.gaierror(socket.EAI_NONAME, f"socket guard: lookup of {host!r} refused")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''


@pytest.fixture(scope="module")
def guard(tmp_path_factory):
    folder = tmp_path_factory.mktemp("socket-guard")
    (folder / "sitecustomize.py").write_text(GUARD)
    image = folder / "cat.png"
    Image.new("RGB", (32, 32), (200, 120, 40)).save(image)
    return folder


COMMANDS = {
    "run hf: dataset": (["run", "--model", "clipbench-tiny", "--suite", "zeroshot", "--dataset",
                         "hf:clipbench-test/no-such-dataset", "--offline", "--no-progress"], 2, "hf:"),
    "run hf: dataset, CLIPBENCH_OFFLINE=1": (["run", "--model", "clipbench-tiny", "--suite", "zeroshot",
                                              "--dataset", "hf:clipbench-test/no-such-dataset", "--no-progress"],
                                             2, "hf:"),
    "run hf: model": (["run", "--model", "hf:openai/clip-vit-base-patch32", "--suite", "zeroshot", "--dataset",
                       "digits", "--offline", "--no-progress"], 2, "offline"),
    "run openclip: model": (["run", "--model", "openclip:ViT-B-32/openai", "--suite", "zeroshot", "--dataset",
                             "digits", "--offline", "--no-progress"], 2, "offline"),
    "predict hf: model": (["predict", "{image}", "--labels", "cat,dog", "--model", "hf:openai/clip-vit-base-patch32",
                           "--offline"], 2, "offline"),
    "predict registry model": (["predict", "{image}", "--labels", "cat,dog", "--model", "ViT-B/32", "--offline"], 2,
                               "offline"),
    "list models, CLIPBENCH_OFFLINE=1": (["list", "models"], 0, "ViT-B/32"),
    "list datasets, CLIPBENCH_OFFLINE=1": (["list", "datasets"], 0, "cifar10"),
    "download dataset": (["download", "cifar10", "--offline"], 2, "offline"),
    "download model": (["download", "ViT-B/32", "--offline"], 2, "offline"),
}

#: Runs every command of COMMANDS in this one process (one torch import, not twelve), each under
#: the guard, and notes per command its exit code, output and the guard's log lines.
DRIVER = """
import contextlib, io, json, os, sys, time
from clipbench.cli import main
cases, log, out_path = json.loads(sys.argv[1]), os.environ["CLIPBENCH_TEST_SOCKET_LOG"], sys.argv[2]
results = {}
for name, argv in cases.items():
    open(log, "w").close()
    os.environ.pop("CLIPBENCH_OFFLINE", None)
    if "--offline" not in argv:
        os.environ["CLIPBENCH_OFFLINE"] = "1"
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results[name] = {"code": code, "out": out.getvalue(), "err": err.getvalue(),
                     "attempts": open(log).read().splitlines(), "seconds": time.monotonic() - started}
with open(out_path, "w") as fh:
    json.dump(results, fh)
"""


@pytest.fixture(scope="module")
def outcomes(guard, tmp_path_factory):
    import json

    tmp_path = tmp_path_factory.mktemp("offline-run")
    cases = {name: [a.replace("{image}", str(guard / "cat.png")) for a in argv]
             for name, (argv, _, _) in COMMANDS.items()}
    environ = subprocess_env(CLIPBENCH_TEST_SOCKET_LOG=str(tmp_path / "connections.log"),
                             CLIPBENCH_CACHE=str(tmp_path / "cache"), CLIPBENCH_DATA=str(tmp_path / "data"),
                             HF_HOME=str(tmp_path / "hf"))
    for name in HF_OFFLINE_ENV:
        environ.pop(name, None)  # the session's conftest sets them; offline must not depend on that
    environ.pop("CLIPBENCH_OFFLINE", None)
    environ["PYTHONPATH"] = os.pathsep.join([str(guard), environ["PYTHONPATH"]])
    out = tmp_path / "outcomes.json"
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases), str(out)], env=environ,
                          capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert proc.returncode == 0 and out.is_file(), proc.stderr
    return json.loads(out.read_text())


@pytest.mark.subprocess
@pytest.mark.parametrize("case", list(COMMANDS))
def test_offline_command_reaches_nothing(outcomes, case):
    _, code, fragment = COMMANDS[case]
    result = outcomes[case]
    assert result["attempts"] == [], f"{case}: network access in offline mode: {result['attempts']}\n{result['err']}"
    assert result["code"] == code, result["out"] + result["err"]
    assert fragment in result["out"] + result["err"]
    if code == 2:
        err = result["err"]
        assert err.startswith("clipbench: error:") and err.count("\n") == 1, err
    assert result["seconds"] < 30, f"{case} took {result['seconds']:.0f} s"


def test_hf_offline_sets_and_restores_the_libraries_switches(monkeypatch):
    import datasets
    import huggingface_hub.constants as hub_constants

    from clipbench.foundations.config import hf_offline

    for name in HF_OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    with hf_offline(True):
        assert all(os.environ[name] == "1" for name in HF_OFFLINE_ENV)
        assert hub_constants.HF_HUB_OFFLINE is True and datasets.config.HF_HUB_OFFLINE is True
    assert not any(name in os.environ for name in HF_OFFLINE_ENV)
    assert hub_constants.HF_HUB_OFFLINE is False and datasets.config.HF_HUB_OFFLINE is False
    with hf_offline(False):
        assert "HF_HUB_OFFLINE" not in os.environ
