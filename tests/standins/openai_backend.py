"""Loopback OpenAI-compatible chat-completions server standing in for a llama-server backend,
for tool-call plumbing tests only (small real models do not emit tool calls reliably; every
other gateway test uses the real llama-server). Stdlib only.

* ``POST /v1/chat/completions``: with ``tools`` in the request (and ``tool_choice`` not
  ``"none"``, and the last message not a ``tool`` result) a fixed tool call
  (``finish_reason: "tool_calls"``, ``tool_call`` if set, else the first tool with placeholder
  arguments); plain text echoing the last user message otherwise. ``stream: true`` answers in
  SSE with OpenAI's delta format and ``data: [DONE]``; a usage chunk when
  ``stream_options.include_usage`` is set.
* ``GET /health`` (``{"status": "ok"}``, 503 ``Loading model`` while ``down``), ``GET
  /v1/models``.

With ``key`` set, requests without ``Authorization: Bearer <key>`` get llama-server's 401. The
fault controls, request log and control endpoints are those of ``base.FaultStandin``.

Run standalone, from the repository root:
``.venv/bin/python -m tests.standins.openai_backend --port 8766 [--model NAME]``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, ClassVar

from .base import FaultStandin, StandinHandler, cli, placeholder_args


def llama_error(code: int, kind: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": kind}}


class OpenAIBackendStandin(FaultStandin):
    CONTROLS: ClassVar[dict[str, type]] = {**FaultStandin.CONTROLS, "tool_call": dict}
    KEY_HEADERS = ("authorization",)

    def __init__(
        self,
        key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = "standin-model",
        tool_call: dict[str, Any] | None = None,
    ) -> None:
        self.key = key
        self.model = model
        self._default_tool_call = tool_call
        self.tool_call: dict[str, Any] | None = tool_call
        self._counter = 0
        super().__init__(host, port)

    def reset(self) -> None:
        super().reset()
        self.tool_call = self._default_tool_call

    @property
    def base(self) -> str:
        """The value for LiteLLM's ``api_base`` (``openai/`` provider)."""
        return f"{self.root}/v1"

    def handle(
        self, req: StandinHandler, method: str, path: str, query: dict[str, str], body: bytes
    ) -> None:
        if path == "/health" and method == "GET":
            if self.down:
                req.send_json(503, llama_error(503, "unavailable_error", "Loading model"))
            else:
                req.send_json(200, {"status": "ok"})
            return
        if self.down:
            req.send_json(503, llama_error(503, "unavailable_error", "Loading model"))
            return
        if self.key is not None and req.headers.get("authorization") != f"Bearer {self.key}":
            req.send_json(401, llama_error(401, "authentication_error", "Invalid API Key"))
            return
        if path in ("/v1/models", "/models") and method == "GET":
            model = {"id": self.model, "object": "model", "created": 0, "owned_by": "llamacpp"}
            req.send_json(200, {"object": "list", "data": [model]})
            return
        if path not in ("/v1/chat/completions", "/chat/completions") or method != "POST":
            req.send_json(404, llama_error(404, "not_found_error", "File Not Found"))
            return
        try:
            request = json.loads(body)
            messages = request["messages"]
        except (ValueError, KeyError, TypeError):
            req.send_json(400, llama_error(400, "invalid_request_error", "Invalid request"))
            return
        if request.get("stream") and self.fail_before_first_token:
            req.send_json(503, llama_error(503, "unavailable_error", "Loading model"))
            return
        self._counter += 1
        self.respond(req, request, messages)

    def respond(self, req: StandinHandler, request: dict[str, Any], messages: list[Any]) -> None:
        ident = f"chatcmpl-standin-{self._counter}"
        created = int(time.time())
        model = str(request.get("model") or self.model)
        call = self._tool_call(request, messages)
        text = None
        if call is None:
            last = next((m for m in reversed(messages) if m.get("role") in ("user", "tool")), {})
            content = last.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            text = "openai-standin: " + (str(content or "")[:200] or "(no text)")
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in messages) or 1
        out_tokens = 8 if text is None else len(text.split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": out_tokens,
            "total_tokens": prompt_tokens + out_tokens,
        }
        finish = "tool_calls" if call is not None else "stop"
        if not request.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if call is not None:
                message["tool_calls"] = [call]
            choice = {"index": 0, "message": message, "finish_reason": finish}
            req.send_json(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                },
            )
            return

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return json.dumps(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                }
            )

        events = [chunk({"role": "assistant", "content": None})]
        if call is not None:
            args = call["function"]["arguments"]
            head = {
                **call,
                "index": 0,
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            events.append(chunk({"tool_calls": [head]}))
            half = len(args) // 2
            for piece in (args[:half], args[half:]):
                events.append(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        else:
            assert text is not None
            words = text.split(" ")
            events += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        events.append(chunk({}, finish))
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append(
                json.dumps(
                    {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        events.append("[DONE]")
        req.send_events(events, self.chunk_interval_s)

    def _tool_call(self, request: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
        tools = [t for t in request.get("tools") or [] if isinstance(t, dict) and "function" in t]
        if not tools or request.get("tool_choice") == "none":
            return None
        if messages and messages[-1].get("role") == "tool":
            return None
        if self.tool_call is not None:
            name, args = self.tool_call["name"], dict(self.tool_call.get("args") or {})
        else:
            name = tools[0]["function"]["name"]
            args = placeholder_args(tools[0]["function"].get("parameters"))
        function = {"name": name, "arguments": json.dumps(args)}
        return {"id": "call_1", "type": "function", "function": function}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible llama-server stand-in")
    parser.add_argument("--model", default="standin-model", help="id listed by /v1/models")
    cli(
        parser.description or "",
        lambda args, key: OpenAIBackendStandin(
            key=key, host=args.host, port=args.port, model=args.model
        ),
        parser,
    )
