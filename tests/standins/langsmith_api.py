"""Loopback stand-in for the LangSmith API (``GET /api/v1/sessions?limit=1``, ``x-api-key``).

The valid key gets a JSON list of sessions, any other key LangSmith's 401
``{"detail": "Invalid token"}``. Modes as in ``base.ModeStandin``: ``ok``, ``slow``, ``error``.
"""

from __future__ import annotations

from typing import Any

from .base import ModeStandin, StandinHandler


class LangSmithApiStandin(ModeStandin):
    def __init__(self, valid_key: str) -> None:
        super().__init__()
        self.valid_key = valid_key

    @property
    def base(self) -> str:
        return self.root

    def answer(self, request: StandinHandler) -> tuple[int, Any]:
        if request.path.split("?")[0] != "/api/v1/sessions":
            return 404, {"detail": "Not Found"}
        if request.headers.get("x-api-key") != self.valid_key:
            return 401, {"detail": "Invalid token"}
        return 200, [{"id": "6f1e2c9a-0000-4000-8000-000000000001", "name": "default"}]
