"""Loopback stand-ins for llama-server, the gateway and the settings service (stdlib only).

``Standin`` answers from a route table, ``(method, path) -> (status, body)``, records each
request, and can hold some paths unanswered (``hang``) until it is closed. ``silent_port()``
gives a socket that accepts connections in the kernel but never answers (a SIGSTOPped server);
``free_port()`` a port nothing listens on (a server that is down).

Run standalone as a llama-server stand-in: ``python standin.py PORT``.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: Standin


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        standin = self.server.standin
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        standin.requests.append(
            {
                "method": self.command,
                "path": path,
                "authorization": self.headers.get("authorization"),
                "body": json.loads(raw) if raw else None,
            }
        )
        if path in standin.hang:
            standin.released.wait(30)
            return
        status, body = standin.routes.get((self.command, path), (404, {"error": "not found"}))
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _handle


class Standin:
    def __init__(self, routes: dict[tuple[str, str], Route] | None = None) -> None:
        self.routes: dict[tuple[str, str], Route] = dict(routes or {})
        self.hang: set[str] = set()
        self.released = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def silent_socket() -> socket.socket:
    """Listening, never accepting: connects succeed, no answer ever comes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


LLAMA_OK: dict[tuple[str, str], Route] = {
    ("GET", "/health"): (200, {"status": "ok"}),
    ("POST", "/completion"): (200, {"content": "ok", "tokens_predicted": 1}),
}

if __name__ == "__main__":
    server = Standin(LLAMA_OK)
    print(server.url, flush=True)
    threading.Event().wait()
    sys.exit(0)
