"""Fault injection for the reliability tests: a slow loopback HTTP server and killable subprocesses.

Subprocesses run ``python -c CODE`` with this folder on ``PYTHONPATH`` (so they can import the other
fixtures) and one thread per library, and are killed with SIGKILL either by the test (when a
condition on disk becomes true) or by themselves (a test hook or a wrapped function).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _http_fixtures import LoopbackServer

TESTS_DIR = Path(__file__).resolve().parent

#: Kill a wrapped function's process right after (or instead of) its real work: used inside ``python -c`` code.
KILL_SELF = "__import__('os').kill(__import__('os').getpid(), __import__('signal').SIGKILL)"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The test's environment (isolated dirs) plus PYTHONPATH=tests, single-threaded BLAS, no proxies."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CLIPBENCH_TEST_") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def start_python(code: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], env=subprocess_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def start_cli(argv: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "clipbench", *argv], env=subprocess_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 180) -> None:
    """SIGKILL ``proc`` as soon as ``condition()`` holds; fail if it exits first or never gets there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process exited ({proc.returncode}) before the kill point:\n{out}\n{err}")
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    raise AssertionError("kill point never reached")


def expect_killed(proc: subprocess.Popen, timeout: float = 180) -> None:
    """Wait for ``proc`` to SIGKILL itself (a test hook); anything else is a failure with its output."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == -signal.SIGKILL, f"expected SIGKILL, got {proc.returncode}:\n{out}\n{err}"


def expect_ok(proc: subprocess.Popen, timeout: float = 180) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{out}\n{err}"
    return out


def SlowServer(files: dict[str, bytes], chunk: int = 64 * 1024, delay: float = 0.05) -> LoopbackServer:  # noqa: N802
    """A loopback server that streams slowly (``server.slow = False`` speeds it up), for kills mid-transfer."""
    return LoopbackServer(files, slow=True, chunk=chunk, delay=delay)


def temp_files(folder: Path, name: str) -> list[Path]:
    """Temporary siblings ``atomic_open`` makes while writing ``folder/name`` (``.name.XXXXXXXX.tmp``)."""
    return sorted(p for p in folder.glob(f".{name}.*.tmp") if p.name.count(".") == name.count(".") + 3) \
        if folder.is_dir() else []


def biggest(paths: list[Path]) -> int:
    sizes = []
    for p in paths:
        try:
            sizes.append(p.stat().st_size)
        except FileNotFoundError:
            pass
    return max(sizes, default=0)
