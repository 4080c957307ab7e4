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
(attributes, ``set_mode()``, or ``POST /_standin/mode`` with JSON): ``down`` (503
``UNAVAILABLE``), ``drop`` (close the connection without an answer), ``delay_s`` (sleep before
answering), ``fail_before_first_token`` (streams get 503 before any event). ``requests`` logs
method, path, whether a key was sent, header names and the JSON body, never the key; ``GET
/_standin/requests`` returns it, ``POST /_standin/reset`` clears it and the faults.

Run standalone: ``python tests/standins/gemini_api.py --port 8765 [--key-file F | --key K]``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash")


# --- shared base (also used by openai_backend.py) -----------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    standin: StandinBase


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real servers set: without it, headers and body go out as two segments and
    # the body waits for the client's delayed ACK (40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.server.standin.dispatch(self, "GET")

    def do_POST(self) -> None:
        self.server.standin.dispatch(self, "POST")

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_chunk(self, data: bytes) -> None:
        """One HTTP/1.1 chunk; an empty ``data`` ends the body."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_events(self, events: list[str], interval_s: float, sep: str = "\n\n") -> None:
        try:
            self.start_sse()
            for i, event in enumerate(events):
                if i and interval_s:
                    time.sleep(interval_s)
                self.send_chunk(f"data: {event}{sep}".encode())
            self.send_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class StandinBase:
    """A threaded HTTP server on ``host:port`` (port 0: a free one) with fault controls."""

    CONTROLS: ClassVar[dict[str, type]] = {
        "down": bool,
        "drop": bool,
        "delay_s": float,
        "fail_before_first_token": bool,
        "chunk_interval_s": float,
    }
    KEY_HEADERS: ClassVar[tuple[str, ...]] = ()
    KEY_PARAMS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.reset()
        self._server = _Server((host, port), Handler)
        self._server.standin = self
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        """Clear the request log and every fault."""
        with self.lock:
            self.requests.clear()
        self.down = False
        self.drop = False
        self.delay_s = 0.0
        self.fail_before_first_token = False
        self.chunk_interval_s = 0.01

    def set_mode(self, **changes: Any) -> dict[str, Any]:
        for name, value in changes.items():
            kind = self.CONTROLS.get(name)
            if kind is None:
                raise ValueError(f"unknown control {name!r}")
            if value is not None or kind is not dict:  # tool_call may be reset to None
                value = kind(value)
                if kind is dict and not isinstance(value.get("name"), str):
                    raise ValueError(f"{name} needs a string 'name' (and optional 'args')")
            setattr(self, name, value)
        return self.mode()

    def mode(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.CONTROLS}

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def root(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def logged(self, method: str | None = None, path_contains: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(entry)
                for entry in self.requests
                if (method is None or entry["method"] == method) and path_contains in entry["path"]
            ]

    def dispatch(self, req: Handler, method: str) -> None:
        url = urlsplit(req.path)
        body = req.read_body()
        if url.path.startswith("/_standin/"):
            self._control(req, method, url.path, body)
            return
        query = dict(parse_qsl(url.query))
        key_present = any(req.headers.get(h) for h in self.KEY_HEADERS) or any(
            query.get(p) for p in self.KEY_PARAMS
        )
        safe_query = urlencode([(k, v) for k, v in query.items() if k not in self.KEY_PARAMS])
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = None
        with self.lock:
            self.requests.append(
                {
                    "method": method,
                    "path": url.path + (f"?{safe_query}" if safe_query else ""),
                    "key_present": key_present,
                    "header_names": sorted(h.lower() for h in req.headers),
                    "body": payload,
                    "time": time.time(),
                }
            )
        if self.drop:
            req.close_connection = True
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        self.handle(req, method, url.path, query, body)

    def _control(self, req: Handler, method: str, path: str, body: bytes) -> None:
        if method == "GET" and path == "/_standin/requests":
            with self.lock:
                req.send_json(200, list(self.requests))
        elif method == "GET" and path == "/_standin/mode":
            req.send_json(200, self.mode())
        elif method == "POST" and path == "/_standin/mode":
            try:
                req.send_json(200, self.set_mode(**json.loads(body or b"{}")))
            except (ValueError, TypeError) as exc:
                req.send_json(400, {"error": str(exc)})
        elif method == "POST" and path == "/_standin/reset":
            self.reset()
            req.send_json(200, self.mode())
        else:
            req.send_json(404, {"error": "unknown control path"})

    def handle(
        self, req: Handler, method: str, path: str, query: dict[str, str], body: bytes
    ) -> None:
        raise NotImplementedError


def placeholder_args(schema: Any) -> dict[str, Any]:
    """Arguments for a JSON-schema'd function: a typed placeholder for each required property."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") or {}
    values = {"string": "standin", "integer": 1, "number": 1.5, "boolean": True, "array": []}
    args: dict[str, Any] = {}
    for name in schema.get("required") or []:
        prop = props.get(name) or {}
        if prop.get("enum"):
            args[name] = prop["enum"][0]
        else:
            args[name] = values.get(str(prop.get("type", "string")).lower(), {})
    return args


def cli(description: str, build: Any, parser: argparse.ArgumentParser | None = None) -> None:
    """Run a stand-in in the foreground: ``build(args, key)`` -> stand-in. Adds ``--host``,
    ``--port``, ``--key``/``--key-file`` to ``parser``; prints the address, never the key."""
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", help="required API key (prefer --key-file)")
    parser.add_argument("--key-file", help="file whose stripped content is the required key")
    args = parser.parse_args()
    key = args.key
    if args.key_file:
        with open(args.key_file, encoding="utf-8") as fh:
            key = fh.read().strip()
    standin = build(args, key)
    required = "required" if key else "not checked"
    print(f"{type(standin).__name__} listening on {standin.root} (key {required})", flush=True)
    standin.serve_forever()


# --- Gemini ---------------------------------------------------------------------------------------

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


class GeminiStandin(StandinBase):
    CONTROLS: ClassVar[dict[str, type]] = {**StandinBase.CONTROLS, "tool_call": dict}
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
        self, req: Handler, method: str, path: str, query: dict[str, str], body: bytes
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
