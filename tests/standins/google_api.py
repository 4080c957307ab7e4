"""Loopback stand-in for the Google Generative Language API (``GET /v1beta/models``).

Speaks the real path and header (``x-goog-api-key``) and the real error shape. Modes
(``base.ModeStandin``): ``ok`` (default), ``slow`` (sleeps ``slow_s`` before answering),
``error`` (HTTP 500). For a dead endpoint use ``dead_url()``: a loopback port with nothing
listening.
"""

from __future__ import annotations

import socket
from typing import Any

from .base import ModeStandin, StandinHandler


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class GoogleApiStandin(ModeStandin):
    """``GET /v1beta/models`` with ``x-goog-api-key``: the valid key gets a model list, any
    other key Google's 400 INVALID_ARGUMENT answer; no key at all gets 403."""

    def __init__(self, valid_key: str) -> None:
        super().__init__()
        self.valid_key = valid_key

    @property
    def base(self) -> str:
        return f"{self.root}/v1beta"

    def answer(self, request: StandinHandler) -> tuple[int, Any]:
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
