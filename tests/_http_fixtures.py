"""One loopback HTTP file server for every download test (127.0.0.1 only, a free port).

``files`` maps URL paths to bytes. ``/truncated/<path>`` promises more bytes than it sends and hangs
up; ``/error/<path>`` answers 500. While ``slow`` is set, bodies go out ``chunk`` bytes every
``delay`` seconds, so a client can be killed mid-transfer.
"""

from __future__ import annotations

import http.server
import threading
import time


class LoopbackServer:
    def __init__(self, files: dict[str, bytes], slow: bool = False, chunk: int = 64 * 1024,
                 delay: float = 0.05) -> None:
        self.files, self.slow, self.chunk, self.delay = files, slow, chunk, delay
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests.append(self.path)
                if self.path.startswith("/error/"):
                    self.send_error(500, "boom")
                    return
                truncated = self.path.startswith("/truncated/")
                body = outer.files.get(self.path.replace("/truncated/", "/", 1) if truncated else self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) + 5000 if truncated else len(body)))
                self.end_headers()
                if truncated:
                    body = body[: len(body) // 2]
                    self.close_connection = True
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
