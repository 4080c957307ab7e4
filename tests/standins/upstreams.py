"""Loopback stand-ins for llama-server, the gateway and the settings service (stdlib only).

``Standin`` answers from a route table, ``(method, path) -> (status, body)``, records each
request, and can hold some paths unanswered (``hang``) until it is closed. ``silent_socket()``
gives a socket that accepts connections in the kernel but never answers (a SIGSTOPped server);
``nova_common.ports.free_port()`` gives a port nothing listens on (a server that is down).

Run standalone as a llama-server stand-in (it prints its URL), from the repository root:
``.venv/bin/python -m tests.standins.upstreams``.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from tests.standins.base import LoopbackStandin, StandinHandler

Route = tuple[int, Any]


class Standin(LoopbackStandin):
    """Started on creation; ``close()`` releases held requests and stops it."""

    METHODS = ("GET", "POST")

    def __init__(self, routes: dict[tuple[str, str], Route] | None = None) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], Route] = dict(routes or {})
        self.hang: set[str] = set()
        self.released = threading.Event()
        self.start()

    @property
    def url(self) -> str:
        return self.root

    def serve(self, request: StandinHandler) -> None:
        raw = request.read_body()
        path = request.path.split("?")[0]
        self.requests.append(
            {
                "method": request.command,
                "path": path,
                "authorization": request.headers.get("authorization"),
                "body": json.loads(raw) if raw else None,
            }
        )
        if path in self.hang:
            self.released.wait(30)
            return
        status, body = self.routes.get((request.command, path), (404, {"error": "not found"}))
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        request.send_bytes(status, data, "application/json")

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def close(self) -> None:
        self.released.set()
        self.stop()


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
