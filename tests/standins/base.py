"""The one base of every loopback HTTP stand-in (stdlib only).

``LoopbackStandin`` owns a threaded HTTP server on ``host:port`` (port 0: a free one), serves
it in a daemon thread (``start()``/``stop()``, or ``with``; ``serve_forever()`` in the
foreground) and hands every request to its ``serve(request)``. ``StandinHandler`` is the
request handler they all share: HTTP/1.1 keep-alive, TCP_NODELAY, no access log, JSON and SSE
helpers. A stand-in lists the methods it speaks in ``METHODS``; any other method gets the 501
that ``http.server`` gives.

Two families build on it:

* ``ModeStandin``: the settings service's upstreams (Google, LangSmith, the fake gateway and
  llama-server): ``answer(request) -> (status, body)`` as JSON, a request log, and a ``mode``
  (``ok``, ``slow``: sleep ``slow_s`` first, ``error``: HTTP 500).
* ``FaultStandin``: the gateway's model backends (Gemini, the OpenAI-compatible llama-server
  stand-in): fault controls (``down``, ``drop``, ``delay_s``, ``fail_before_first_token``,
  ``chunk_interval_s``) set as attributes, with ``set_mode()`` or over HTTP
  (``/_standin/mode``, ``/_standin/reset``, ``/_standin/requests``), and a request log that
  never holds a key.

The others (``huggingface_hub_server.HubStandin``, ``tests/standins/upstreams.Standin``) build on
``LoopbackStandin`` directly. Stand-ins that run on their own (``cli``) are started as modules:
``.venv/bin/python -m tests.standins.gemini_api --port 8765`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlencode, urlsplit


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent clients in the concurrency and load tests
    standin: LoopbackStandin

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self.standin.QUIET_ERRORS:
            super().handle_error(request, client_address)


class StandinHandler(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real servers set: without it, headers and body go out as two segments and
    # the body waits for the client's delayed ACK (40 ms per request on a kept-alive connection).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def dispatch(self) -> None:
        standin = self.server.standin
        if self.command not in standin.METHODS:  # what http.server answers without do_<METHOD>
            self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")
            return
        standin.serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = dispatch

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        """A complete answer; a client that has gone away ends the connection quietly."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_json(self, status: int, body: Any) -> None:
        self.send_bytes(status, json.dumps(body).encode(), self.server.standin.JSON_TYPE)

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


class LoopbackStandin:
    """A threaded HTTP server on ``host:port`` (port 0: a free one); subclasses ``serve``."""

    METHODS: ClassVar[tuple[str, ...]] = ("GET",)
    HANDLER: ClassVar[type[StandinHandler]] = StandinHandler
    JSON_TYPE: ClassVar[str] = "application/json"
    QUIET_ERRORS: ClassVar[bool] = False  # True: no traceback for a connection the test cut

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.Lock()
        self.requests: list[Any] = []
        self._server = StandinServer((host, port), self.HANDLER)
        self._server.standin = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def root(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (standalone runs)."""
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def serve(self, request: StandinHandler) -> None:
        raise NotImplementedError


# --- the settings service's upstreams: JSON answers, ok / slow / error ------------------------


class ModeStandin(LoopbackStandin):
    """``GET`` only; each request logged (path, headers), then answered per ``mode``: ``ok``
    (``answer``), ``slow`` (``answer`` after ``slow_s``), ``error`` (HTTP 500)."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.slow_s = 3.0

    def serve(self, request: StandinHandler) -> None:
        with self.lock:
            self.requests.append({"path": request.path, "headers": dict(request.headers.items())})
            mode = self.mode
        if mode == "slow":
            time.sleep(self.slow_s)
        if mode == "error":
            request.send_json(
                500, {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}
            )
            return
        status, body = self.answer(request)
        request.send_json(status, body)

    def answer(self, request: StandinHandler) -> tuple[int, Any]:
        raise NotImplementedError


# --- the gateway's model backends: fault controls and a key-free request log ------------------


class FaultStandin(LoopbackStandin):
    """``GET``/``POST``, with fault controls and control endpoints; subclasses ``handle``."""

    METHODS = ("GET", "POST")
    JSON_TYPE = "application/json; charset=UTF-8"
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
        super().__init__(host, port)
        self.reset()

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

    def logged(self, method: str | None = None, path_contains: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [
                dict(entry)
                for entry in self.requests
                if (method is None or entry["method"] == method) and path_contains in entry["path"]
            ]

    def serve(self, request: StandinHandler) -> None:
        method = request.command
        url = urlsplit(request.path)
        body = request.read_body()
        if url.path.startswith("/_standin/"):
            self._control(request, method, url.path, body)
            return
        query = dict(parse_qsl(url.query))
        key_present = any(request.headers.get(h) for h in self.KEY_HEADERS) or any(
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
                    "header_names": sorted(h.lower() for h in request.headers),
                    "body": payload,
                    "time": time.time(),
                }
            )
        if self.drop:
            request.close_connection = True
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        self.handle(request, method, url.path, query, body)

    def _control(self, req: StandinHandler, method: str, path: str, body: bytes) -> None:
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
        self, req: StandinHandler, method: str, path: str, query: dict[str, str], body: bytes
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


def cli(
    description: str,
    build: Callable[[argparse.Namespace, str | None], LoopbackStandin],
    parser: argparse.ArgumentParser | None = None,
) -> None:
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
