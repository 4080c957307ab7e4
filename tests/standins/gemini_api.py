"""Loopback stand-in for the Google Generative Language API (v1beta), as LiteLLM's ``gemini/``
provider and the settings service call it. Stdlib only.

LiteLLM 1.108.7 with ``api_base`` set builds ``{api_base}/models/{model}:generateContent`` and
``{api_base}/models/{model}:streamGenerateContent?alt=sse`` (``_check_custom_proxy`` in
``litellm/llms/vertex_ai/vertex_llm_base.py``) and sends the key as ``x-goog-api-key``; it adds
no API version, so ``api_base`` must end in ``/v1beta`` (``GeminiStandin.base``), as Google's
own base does. Paths without a version prefix get 404, as at Google.

Routes (``{v}`` is ``v1``, ``v1beta`` or ``v1alpha``):

* ``GET /{v}/models``, ``GET /{v}/models/{model}``: model list / one model;
* ``POST /{v}/models/{model}:generateContent``: one candidate echoing the last user text, or a
  ``functionCall`` part when the request declares functions (``tool_call`` if set, else the
  first declared function with placeholder args), text again once a ``functionResponse`` is
  the last turn;
* ``POST /{v}/models/{model}:streamGenerateContent?alt=sse``: the same as SSE events.

Keys: with ``key`` set, a wrong key gets Google's 400 ``API_KEY_INVALID`` answer and a missing
one Google's 403 ``PERMISSION_DENIED``; with ``key=None`` any key passes. Fault controls
(attributes, ``set_mode()``, or ``POST /_standin/mode`` with JSON; ``base.FaultStandin``):
``down`` (503 ``UNAVAILABLE``), ``drop`` (close the connection without an answer), ``delay_s``
(sleep before answering), ``fail_before_first_token`` (streams get 503 before any event),
``tool_call``. ``requests`` logs method, path, whether a key was sent, header names and the JSON
body, never the key; ``GET /_standin/requests`` returns it, ``POST /_standin/reset`` clears it
and the faults.

Run standalone, from the repository root:
``.venv/bin/python -m tests.standins.gemini_api --port 8765 [--key-file F | --key K]``.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from .base import FaultStandin, StandinHandler, cli, placeholder_args

DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash")


_MODEL_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models(?:/([^/:]+)(?::(\w+))?)?$")


def google_error(code: int, status: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


API_KEY_INVALID = google_error(
    400,
    "INVALID_ARGUMENT",
    "API key not valid. Please pass a valid API key.",
    details=[
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        }
    ],
)
KEY_MISSING = google_error(
    403,
    "PERMISSION_DENIED",
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API.",
)
UNAVAILABLE = google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


class GeminiStandin(FaultStandin):
    CONTROLS: ClassVar[dict[str, type]] = {**FaultStandin.CONTROLS, "tool_call": dict}
    KEY_HEADERS = ("x-goog-api-key",)
    KEY_PARAMS = ("key",)

    def __init__(
        self,
        key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        models: tuple[str, ...] | list[str] = DEFAULT_MODELS,
        tool_call: dict[str, Any] | None = None,
    ) -> None:
        self.key = key
        self.models = list(models)
        self._default_tool_call = tool_call
        self.tool_call: dict[str, Any] | None = tool_call
        super().__init__(host, port)

    def reset(self) -> None:
        super().reset()
        self.tool_call = self._default_tool_call

    @property
    def base(self) -> str:
        """The value for LiteLLM's ``api_base`` and the settings service's Google API base."""
        return f"{self.root}/v1beta"

    def model_info(self, model: str) -> dict[str, Any]:
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": model.replace("-", " ").title(),
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1,
            "maxTemperature": 2,
            "topP": 0.95,
            "topK": 64,
        }

    def handle(
        self, req: StandinHandler, method: str, path: str, query: dict[str, str], body: bytes
    ) -> None:
        if self.down:
            req.send_json(503, UNAVAILABLE)
            return
        match = _MODEL_PATH.match(path)
        if match is None:
            req.send_json(404, google_error(404, "NOT_FOUND", f"Path {path} not found."))
            return
        key = req.headers.get("x-goog-api-key") or query.get("key")
        if self.key is not None and not key:
            req.send_json(403, KEY_MISSING)
            return
        if self.key is not None and key != self.key:
            req.send_json(400, API_KEY_INVALID)
            return
        version, model, action = match.groups()
        if method == "GET" and action is None:
            if model is None:
                req.send_json(200, {"models": [self.model_info(m) for m in self.models]})
            elif model in self.models:
                req.send_json(200, self.model_info(model))
            else:
                req.send_json(404, google_error(404, "NOT_FOUND", f"models/{model} is not found."))
            return
        if method != "POST" or action not in ("generateContent", "streamGenerateContent"):
            req.send_json(404, google_error(404, "NOT_FOUND", f"Path {path} not found."))
            return
        if model not in self.models:
            message = (
                f"models/{model} is not found for API version {version}, or is not supported "
                f"for {action}. Call ListModels to see the list of available models and their "
                "supported methods."
            )
            req.send_json(404, google_error(404, "NOT_FOUND", message))
            return
        try:
            request = json.loads(body)
            contents = request["contents"]
        except (ValueError, KeyError, TypeError):
            req.send_json(400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload."))
            return
        stream = action == "streamGenerateContent"
        if stream and self.fail_before_first_token:
            req.send_json(503, UNAVAILABLE)
            return
        chunks = self.answer(model, request, contents, pieces=3 if stream else 1)
        if not stream:
            req.send_json(200, chunks[0])
        elif query.get("alt") == "sse":
            events = [json.dumps(c) for c in chunks]
            req.send_events(events, self.chunk_interval_s, sep="\r\n\r\n")  # as Google does
        else:  # without alt=sse Google streams one JSON array
            req.send_json(200, chunks)

    def answer(
        self, model: str, request: dict[str, Any], contents: list[Any], pieces: int
    ) -> list[dict[str, Any]]:
        """The response body (``pieces=1``) or the stream chunks, the last with finishReason."""
        texts = [
            str(part["text"])
            for content in contents
            for part in content.get("parts", [])
            if isinstance(part, dict) and "text" in part
        ]
        last_parts = contents[-1].get("parts", []) if contents else []
        answered = any(  # LiteLLM sends snake_case, Google's docs camelCase: both are valid
            isinstance(p, dict) and ("functionResponse" in p or "function_response" in p)
            for p in last_parts
        )
        call = None if answered else self._function_call(request)
        if call is not None:
            parts_list = [[{"functionCall": call}]]
            out_tokens = 8
        else:
            last_text = next(
                (str(p["text"]) for p in last_parts if isinstance(p, dict) and "text" in p), ""
            )
            if answered:
                last_text = "received function result"
            text = "gemini-standin: " + (last_text[:200] or "(no text)")
            words = text.split(" ")
            size = max(1, -(-len(words) // pieces))
            split = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
            split = [s + " " for s in split[:-1]] + split[-1:]
            parts_list = [[{"text": s}] for s in split]
            out_tokens = len(words)
        prompt_tokens = sum(len(t.split()) for t in texts) or 1
        chunks = []
        for i, parts in enumerate(parts_list):
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
            if i == len(parts_list) - 1:
                candidate["finishReason"] = "STOP"
                chunk["usageMetadata"] = {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": out_tokens,
                    "totalTokenCount": prompt_tokens + out_tokens,
                }
            chunk["responseId"] = "standin-response"
            chunks.append(chunk)
        return chunks

    def _function_call(self, request: dict[str, Any]) -> dict[str, Any] | None:
        declarations = [
            decl
            for tool in request.get("tools") or []
            if isinstance(tool, dict)
            for decl in tool.get("functionDeclarations") or tool.get("function_declarations") or []
        ]
        config = request.get("toolConfig") or request.get("tool_config") or {}
        calling = config.get("functionCallingConfig") or config.get("function_calling_config") or {}
        if not declarations or calling.get("mode") == "NONE":
            return None
        if self.tool_call is not None:
            return {"name": self.tool_call["name"], "args": dict(self.tool_call.get("args") or {})}
        first = declarations[0]
        schema = first.get("parameters") or first.get("parametersJsonSchema")
        return {"name": first["name"], "args": placeholder_args(schema)}


if __name__ == "__main__":
    cli(
        "Loopback Gemini API stand-in",
        lambda args, key: GeminiStandin(key=key, host=args.host, port=args.port),
    )
