"""Loopback fakes of the gateway (LiteLLM ``/v1/models``, ``/health/liveliness``) and of
llama-server (``/health``, ``/props``), for the settings service's unit-level tests only: the
real components are exercised on the real host by the host tests.

Modes: ``ok``, ``slow``, ``error`` (HTTP 500 everywhere); llama-server also ``loading`` (its
``/health`` answers 503 as while it loads a model).
"""

from __future__ import annotations

from typing import Any

from .base import ModeStandin, StandinHandler


class FakeGateway(ModeStandin):
    def __init__(self, master_key: str, model_ids: list[str]) -> None:
        super().__init__()
        self.master_key = master_key
        self.model_ids = list(model_ids)

    def answer(self, request: StandinHandler) -> tuple[int, Any]:
        path = request.path.split("?")[0]
        if path == "/health/liveliness":
            return 200, "I'm alive!"
        if path != "/v1/models":
            return 404, {"detail": "Not Found"}
        if request.headers.get("authorization") != f"Bearer {self.master_key}":
            return 401, {"error": {"message": "Authentication Error", "code": "401"}}
        return 200, {
            "object": "list",
            "data": [
                {"id": model_id, "object": "model", "created": 1677610602, "owned_by": "openai"}
                for model_id in self.model_ids
            ],
        }


class FakeLlamaServer(ModeStandin):
    def __init__(self, n_ctx: int) -> None:
        super().__init__()
        self.n_ctx = n_ctx

    def answer(self, request: StandinHandler) -> tuple[int, Any]:
        path = request.path.split("?")[0]
        if path == "/health":
            if self.mode == "loading":
                return 503, {"error": {"code": 503, "message": "Loading model"}}
            return 200, {"status": "ok"}
        if path == "/props":
            return 200, {
                "default_generation_settings": {"n_ctx": self.n_ctx, "params": {}},
                "total_slots": 1,
            }
        return 404, {"error": {"code": 404, "message": "File Not Found"}}
