"""The HTTP side: llama-server's API at one address, each request passed to its model's child.

* ``GET /health``: 200 once the preload models are loaded (no key, as llama-server's).
* ``GET /v1/models``: every model served here, loaded or not (OpenAI's list, with ``status``).
* ``GET /residency``: each model's state, quantization, file size, context, footprint and why
  it is not loaded.
* ``POST /models/load``, ``/models/unload`` with ``{"model": NAME}``: load one now, or stop
  one that has no request in flight (409 otherwise).
* ``GET /metrics``: every loaded child's llama-server metrics with a ``model`` label, and the
  residency's own gauges and counters.
* Anything else is passed to the child of the model the JSON body names (``model``; the
  ``model`` query parameter for GET; the default model when neither names one), loading it
  first. An unknown model is a 404, no room a 507, a load that fails or takes too long a 503:
  always an OpenAI-style error body with the reason.

Every route but ``/health`` needs llama-server's API key, which is passed on to the child.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from nova_gpu_sizing.vram import MiB

from .residency import NotServable, Residency

# Not passed on, either way (hop-by-hop, or recomputed by the HTTP library).
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}
)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?(\s.*)$")


def error(status: int, message: str) -> JSONResponse:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        409: "conflict_error",
    }
    return JSONResponse(
        {
            "error": {
                "code": status,
                "message": message,
                "type": kind.get(status, "unavailable_error"),
            }
        },
        status_code=status,
    )


def build_app(residency: Residency, api_key: str) -> Starlette:
    config = residency.config
    ready = {"preloaded": False}

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), api_key.encode()
        )

    async def health(request: Request) -> Response:
        if not ready["preloaded"]:
            return JSONResponse({"status": "loading preload models"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def models(request: Request) -> Response:
        if not authorized(request):
            return error(401, "Invalid API Key")
        data = [
            {"id": s["name"], "object": "model", "owned_by": "llamacpp", "status": s["state"]}
            for s in residency.status()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def residency_status(request: Request) -> Response:
        if not authorized(request):
            return error(401, "Invalid API Key")
        return JSONResponse(
            {
                "budget_mib": residency.budget.bytes // MiB,
                "budget": residency.budget.detail,
                "in_use_mib": residency.used() // MiB,
                "default_model": config.default_model,
                "models": residency.status(),
            }
        )

    async def load_or_unload(request: Request) -> Response:
        """POST /models/load or /models/unload with ``{"model": NAME}`` (the router's API):
        load it now (evicting as a request would), or stop it if no request is in flight."""
        if not authorized(request):
            return error(401, "Invalid API Key")
        try:
            body: Any = json.loads(await request.body())
            name = body["model"]
            if not isinstance(name, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return error(400, 'send {"model": NAME}')
        slot = residency.slots.get(name)
        if slot is None:
            return error(404, f"model {name!r} is not served here")
        if request.url.path.endswith("/load"):
            try:
                await residency.acquire(name)
            except NotServable as e:
                return error(e.status, e.message)
            residency.release(name)
        else:
            try:
                await residency.unload(name)
            except NotServable as e:
                return error(e.status, e.message)
        return JSONResponse({"model": name, "state": slot.state})

    async def metrics(request: Request) -> Response:
        if not authorized(request):
            return error(401, "Invalid API Key")
        lines: list[str] = []
        seen_meta: set[str] = set()
        for slot in list(residency.slots.values()):
            if slot.state != "loaded":
                continue
            try:
                response = await residency.client.get(
                    f"http://127.0.0.1:{slot.model.port}/metrics",
                    headers={"authorization": f"Bearer {api_key}"},
                    timeout=5.0,
                )
            except httpx.HTTPError:
                continue
            if response.status_code != 200:
                continue
            lines += labelled(response.text, slot.name, seen_meta)
        lines += own_metrics(residency)
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    async def forward(request: Request) -> Response:
        if not authorized(request):
            return error(401, "Invalid API Key")
        body = await request.body()
        name = request.query_params.get("model")
        if body and request.method == "POST":
            try:
                parsed: Any = json.loads(body)
            except ValueError:
                return error(400, "the request body is not JSON")
            if isinstance(parsed, dict) and isinstance(parsed.get("model"), str):
                name = parsed["model"]
        name = name or config.default_model
        try:
            model = await residency.acquire(name)
        except NotServable as e:
            return error(e.status, e.message)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS]
        url = httpx.URL(f"http://127.0.0.1:{model.port}{request.url.path}")
        if request.url.query:
            url = url.copy_with(query=request.url.query.encode())
        try:
            upstream = await residency.client.send(
                residency.client.build_request(request.method, url, headers=headers, content=body),
                stream=True,
            )
        except httpx.HTTPError as e:
            residency.release(name)
            return error(
                502, f"model {name!r}: its llama-server did not answer ({type(e).__name__})"
            )

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                # The child died mid-answer: the client sees the stream end early.
                return

        async def done() -> None:
            await upstream.aclose()
            residency.release(name)

        return StreamingResponse(
            relay(),
            status_code=upstream.status_code,
            headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS},
            background=BackgroundTask(done),
        )

    async def startup() -> None:
        await residency.preload()
        ready["preloaded"] = True

    async def shutdown() -> None:
        await residency.shutdown()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await startup()
        try:
            yield
        finally:
            await shutdown()

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/models", models, methods=["GET"]),
            Route("/residency", residency_status, methods=["GET"]),
            Route("/models/load", load_or_unload, methods=["POST"]),
            Route("/models/unload", load_or_unload, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/{path:path}", forward, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )


def labelled(text: str, model: str, seen_meta: set[str]) -> list[str]:
    """A child's exposition with ``model="NAME"`` on every sample; HELP/TYPE lines once."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            key = " ".join(line.split()[:3])
            if key not in seen_meta:
                seen_meta.add(key)
                out.append(line)
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, _, labels, rest = match.groups()
        label = f'model="{model}"'
        out.append(f"{name}{{{label}{',' + labels if labels else ''}}}{rest}")
    return out


def own_metrics(residency: Residency) -> list[str]:
    lines = [
        "# HELP nova_residency_budget_bytes Memory the models may take.",
        "# TYPE nova_residency_budget_bytes gauge",
        f"nova_residency_budget_bytes {residency.budget.bytes}",
        "# HELP nova_residency_model_loaded Whether the model is loaded (1) or not (0).",
        "# TYPE nova_residency_model_loaded gauge",
    ]
    slots = list(residency.slots.values())
    lines += [
        f'nova_residency_model_loaded{{model="{s.name}"}} {int(s.state == "loaded")}' for s in slots
    ]
    for metric, attr, text in (
        ("loads", "loads", "Loads completed."),
        ("evictions", "evictions", "Stops to make room for another model."),
        ("crashes", "crashes", "Child llama-server exits nobody asked for."),
    ):
        lines += [
            f"# HELP nova_residency_{metric}_total {text}",
            f"# TYPE nova_residency_{metric}_total counter",
        ]
        lines += [
            f'nova_residency_{metric}_total{{model="{s.name}"}} {getattr(s, attr)}' for s in slots
        ]
    return lines
