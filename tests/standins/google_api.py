"""Loopback stand-in for the Google Generative Language API (``GET /v1beta/models``).

Speaks the real path and header (``x-goog-api-key``) and the real error shape. Also holds the
small threaded-server base the other stand-ins use. Modes: ``ok`` (default), ``slow``
(sleeps ``slow_s`` before answering), ``error`` (HTTP 500). For a dead endpoint use
``dead_url()``: a loopback port with nothing listening.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as gemini_api.Handler: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        standin = self.server.standin
        with standin.lock:
            standin.requests.append({"path": self.path, "headers": dict(self.headers.items())})
            mode = standin.mode
        if mode == "slow":
            time.sleep(standin.slow_s)
        if mode == "error":
            self.send_json(
                500, {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}
            )
            return
        status, body = standin.answer(self)
        self.send_json(status, body)

    def send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent clients in the concurrency tests
    standin: LoopbackStandin


class LoopbackStandin:
    """A threaded HTTP server on 127.0.0.1:<free port>; subclasses implement ``answer``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"
        self.slow_s = 3.0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, request: BaseHTTPRequestHandler) -> tuple[int, Any]:
        raise NotImplementedError


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class GoogleApiStandin(LoopbackStandin):
    """``GET /v1beta/models`` with ``x-goog-api-key``: the valid key gets a model list, any
    other key Google's 400 INVALID_ARGUMENT answer; no key at all gets 403."""

    def __init__(self, valid_key: str) -> None:
        super().__init__()
        self.valid_key = valid_key

    @property
    def base(self) -> str:
        return f"{self.root}/v1beta"

    def answer(self, request: BaseHTTPRequestHandler) -> tuple[int, Any]:
        if request.path.split("?")[0] != "/v1beta/models":
            return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}
        key = request.headers.get("x-goog-api-key")
        if key is None:
            return 403, {
                "error": {
                    "code": 403,
                    "message": "Method doesn't allow unregistered callers",
                    "status": "PERMISSION_DENIED",
                }
            }
        if key != self.valid_key:
            return 400, {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                }
            }
        return 200, {
            "models": [
                {"name": "models/gemini-2.5-flash", "inputTokenLimit": 1048576},
                {"name": "models/gemini-2.5-pro", "inputTokenLimit": 1048576},
            ]
        }
