"""Fault injection for the reliability tests: a slow loopback HTTP server and killable subprocesses.

Subprocesses run ``python -c CODE`` with this folder on ``PYTHONPATH`` (so they can import the other
fixtures) and one thread per library, and are killed with SIGKILL either by the test (when a
condition on disk becomes true) or by themselves (a test hook or a wrapped function).
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

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


class SlowServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 with Content-Length; while ``slow`` is set it
    sends ``chunk`` bytes every ``delay`` seconds, so a client can be killed mid-transfer."""

    def __init__(self, files: dict[str, bytes], chunk: int = 64 * 1024, delay: float = 0.05) -> None:
        self.files, self.chunk, self.delay = files, chunk, delay
        self.slow = True
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for start in range(0, len(body), outer.chunk):
                        self.wfile.write(body[start:start + outer.chunk])
                        self.wfile.flush()
                        if outer.slow:
                            time.sleep(outer.delay)
                except (BrokenPipeError, ConnectionResetError):  # the client was killed: expected
                    self.close_connection = True

            def log_message(self, *args):  # keep test output quiet
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # a killed client is not a test failure
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
