"""Riding out a restart of the local model's llama-server, so that clients lose nothing.

When llama-server dies (``kill -9``, a crash, an OOM) systemd starts it again after
``RestartSec`` plus the model's load. Without help every request in that gap fails: refused
connections, llama-server's 503 "Loading model", replies cut in the middle. This module is an
httpx transport under LiteLLM's OpenAI-compatible provider (``litellm.aclient_session``) that,
for the local model's chat completions only:

* **waits for the backend** before the first byte: a refused or dropped connection, or a 503
  while the model loads, is retried every ``POLL_S`` until ``NOVA_BACKEND_WAIT_S`` (the litellm
  role's ``litellm_backend_wait_s``) has passed since the request arrived. A request that has
  not yet received a token therefore waits instead of failing;
* **resumes a stream cut after its first token**: it sends the request again with the reply so
  far as an assistant prefill (llama-server continues it), drops the new stream's role chunk,
  keeps the first stream's id, and corrects the final usage, so the client sees one stream.
  A stream that cannot be continued that way (tools, several choices, a response format,
  reasoning, logprobs) or whose backend stays away ends with an error event (LiteLLM passes
  it on as ``data: {"error": {...}}`` without ``[DONE]``, its message saying the reply is
  incomplete; the OpenAI SDK raises ``APIError``), never a silent, truncated finish;
* past the deadline, answers **503 with Retry-After** and a message naming the model
  (``x-should-retry: false``: the OpenAI SDK must not start another wait). The proxy hook turns
  that into the client's 503 (``hooks.py``).

With several inference hosts (one deployment per host, same model group), a host that fails
is **left out** for ``LEAVE_OUT_S``: this request, and those LiteLLM routes to it meanwhile, go
to another host of the group at once; after that it gets requests again, so a recovered host
rejoins the rotation (a still-dead one costs a refused connection, or at most
``CONNECT_TIMEOUT_S`` for a host that is powered off). Only when every host of the group is
unavailable does a request wait. Each host that goes and comes back is logged once.

Before the first token it waits only when nothing else can answer: when the model's group has
fallbacks configured (Gemini with a Google key), the request fails at once as before and
LiteLLM's fallback serves it; a cut stream is resumed either way. Each cut stream, and each
wait that ends, is logged (journal: ``nova_gateway.backend_restarts``) and counted
(``nova_gateway_backend_*`` on the gateway's /metrics).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .router import has_fallbacks, local_group_of
from .settings import settings

log = logging.getLogger("nova_gateway.backend_restarts")

POLL_S = 0.25
# A local host that failed is skipped this long while its group has another one up.
LEAVE_OUT_S = 5.0
# Connecting to llama-server on loopback or a private network takes well under a millisecond;
# a host that is powered off must not hold a request for LiteLLM's whole request timeout.
CONNECT_TIMEOUT_S = 2.0
# What the backend's death looks like from here, before or during a response.
BACKEND_GONE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
)
# Request fields a prefilled continuation cannot honour.
NOT_RESUMABLE = ("tools", "functions", "response_format", "logprobs", "grammar", "json_schema")

try:  # counted on the gateway's /metrics (LiteLLM's multiprocess registry) when available
    from prometheus_client import Counter

    WAITS = Counter(
        "nova_gateway_backend_waits",
        "Requests that waited for the local backend, by outcome (served, gone).",
        ["model", "outcome"],
    )
    CUT_STREAMS = Counter(
        "nova_gateway_backend_cut_streams",
        "Streams cut by the local backend after their first token, by outcome "
        "(resumed, ended_with_error).",
        ["model", "outcome"],
    )
    REROUTES = Counter(
        "nova_gateway_backend_reroutes",
        "Requests for a local model sent to another inference host than LiteLLM chose, "
        "because that one was unavailable.",
        ["model"],
    )
except ImportError:  # pragma: no cover - prometheus_client ships with LiteLLM's proxy extra
    WAITS = CUT_STREAMS = REROUTES = None


def _count(counter: Any, model: str, outcome: str | None = None) -> None:
    if counter is not None:
        labels = {"model": model} if outcome is None else {"model": model, "outcome": outcome}
        counter.labels(**labels).inc()


def gone_message(model: str, waited_s: float) -> str:
    return (
        f"model {model} is unavailable: its backend (llama-server) is restarting or stopped "
        f"and did not answer within {waited_s:.0f} s. Retry after {settings().retry_after_s} s."
    )


@dataclass
class _Call:
    """One chat completion on its way to the local backend."""

    request: httpx.Request
    body: dict[str, Any]
    wait_s: float
    # The api_base of every host serving the model, the one LiteLLM chose first.
    bases: tuple[str, ...] = ()
    started: float = field(default_factory=time.monotonic)
    attempts: int = 0

    @property
    def deadline(self) -> float:
        return self.started + self.wait_s

    def restart_clock(self) -> None:
        """A cut stream gets the whole wait again, however long it had streamed."""
        self.started = time.monotonic()

    @property
    def model(self) -> str:
        return str(self.body.get("model") or settings().local_model or "local")

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class RestartTolerantTransport(httpx.AsyncBaseTransport):
    """Wraps LiteLLM's own transport; requests to other backends pass straight through."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        waits: Callable[[httpx.Request], Waits | None] | None = None,
    ) -> None:
        self._inner = inner
        self._waits = waits or waits_for_local_backend
        # api_base -> when it may be tried again (monotonic), for hosts that failed.
        self._left_out: dict[str, float] = {}

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return await self._inner.handle_async_request(request)
        waits = self._waits(request)
        if waits is None:
            return await self._inner.handle_async_request(request)
        try:
            body = json.loads(await request.aread())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return await self._inner.handle_async_request(request)
        call = _Call(request, body, waits.first_token, waits.bases)
        if waits.first_token <= 0 and len(waits.bases) <= 1:
            # A fallback answers instead: fail as fast as before.
            response = await self._inner.handle_async_request(request)
        else:
            response = await self._send_when_up(call, request)
            if response is None:
                return self._gone(call)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            call.wait_s = waits.cut_stream
            stream = _ResumingStream(self, call, response)
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=stream,
                extensions=response.extensions,
                request=request,
            )
        return response

    def _is_up(self, base: str, now: float) -> bool:
        return self._left_out.get(base, 0.0) <= now

    def _pick(self, call: _Call) -> str | None:
        """The host to try: the first of the call's hosts that is not left out, else (all are
        down, the call waits) each in turn. None for a single-host call (no choice)."""
        if len(call.bases) <= 1:
            return None
        now = time.monotonic()
        for base in call.bases:
            if self._is_up(base, now):
                return base
        return call.bases[call.attempts % len(call.bases)]

    def _leave_out(self, base: str | None, model: str, reason: str) -> None:
        if base is None:
            return
        if base not in self._left_out:  # once per outage, not at every retry
            log.warning(
                "model %s: host %s unavailable (%s); left out, retried every %.0f s",
                model,
                base,
                reason,
                LEAVE_OUT_S,
            )
        self._left_out[base] = time.monotonic() + LEAVE_OUT_S

    def _take_back(self, base: str | None, model: str) -> None:
        if base is not None and self._left_out.pop(base, None) is not None:
            log.info("model %s: host %s answers again; back in the rotation", model, base)

    def _others_up(self, call: _Call) -> bool:
        now = time.monotonic()
        return any(self._is_up(base, now) for base in call.bases)

    async def _send_when_up(self, call: _Call, request: httpx.Request) -> httpx.Response | None:
        """The backend's response once it answers (not 503), or None past the deadline."""
        waited = False
        while True:
            base = self._pick(call)
            chosen = call.bases[0] if call.bases else None
            target = _retarget(request, chosen, base)
            if base is not None and base != chosen and call.attempts == 0:
                _count(REROUTES, call.model)
            call.attempts += 1
            try:
                response = await self._inner.handle_async_request(target)
            except BACKEND_GONE as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code != 503:
                    self._take_back(base, call.model)
                    if waited:
                        _count(WAITS, call.model, "served")
                        log.info(
                            "model %s: backend back, request served after waiting %.1f s",
                            call.model,
                            time.monotonic() - call.started,
                        )
                    return response
                await response.aclose()
                reason = "503 (loading)"
            self._leave_out(base, call.model, reason)
            if base is not None and self._others_up(call):
                _count(REROUTES, call.model)
                continue  # another host of the group may answer at once
            if not waited:
                log.info("model %s: backend unavailable (%s); waiting for it", call.model, reason)
                waited = True
            if call.remaining() <= 0:
                _count(WAITS, call.model, "gone")
                log.warning(
                    "model %s: backend still unavailable after %.1f s (%s): 503",
                    call.model,
                    time.monotonic() - call.started,
                    reason,
                )
                return None
            await asyncio.sleep(min(POLL_S, max(call.remaining(), 0.01)))

    def _gone(self, call: _Call) -> httpx.Response:
        waited = time.monotonic() - call.started
        return httpx.Response(
            503,
            headers={
                "content-type": "application/json",
                "retry-after": str(settings().retry_after_s),
                # openai-python: do not retry (this was the wait).
                "x-should-retry": "false",
            },
            json={
                "error": {
                    "message": gone_message(call.model, waited),
                    "type": "backend_unavailable",
                    "code": "backend_unavailable",
                }
            },
            request=call.request,
        )

    async def resend(self, call: _Call, body: dict[str, Any]) -> httpx.Response | None:
        headers = httpx.Headers(call.request.headers)
        content = json.dumps(body).encode()
        headers["content-length"] = str(len(content))
        request = httpx.Request(
            "POST",
            call.request.url,
            headers=headers,
            content=content,
            extensions=call.request.extensions,
        )
        return await self._send_when_up(call, request)


class _ResumingStream(httpx.AsyncByteStream):
    """The backend's SSE stream, continued on a new backend stream when it is cut."""

    def __init__(
        self, transport: RestartTolerantTransport, call: _Call, response: httpx.Response
    ) -> None:
        self._transport = transport
        self._call = call
        self._response = response
        self._text: list[str] = []  # content forwarded so far
        self._tokens = 0  # content chunks forwarded: llama-server streams a token per chunk
        self._said = False  # whether more than the opening role chunk reached the client
        self._resumable = not any(call.body.get(k) for k in NOT_RESUMABLE) and call.body.get(
            "n", 1
        ) in (1, None)
        self._finished = False
        self._first_id: str | None = None
        self._first_created: Any = None
        self._resumed_at_tokens: int | None = None  # tokens already sent when last resumed
        # llama-server repeats the prefill at the start of the continuation's content.
        self._echo = ""

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            buffer = b""
            try:
                async for data in self._response.aiter_raw():
                    buffer += data
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        out = self._see(event)
                        if out is not None:
                            yield out + b"\n\n"
                if self._finished:
                    return
                cut = "the backend's stream ended unfinished"
            except BACKEND_GONE as exc:
                if self._finished:  # cut between the last chunk and [DONE]
                    yield b"data: [DONE]\n\n"
                    return
                cut = f"{type(exc).__name__}: {exc}"
            finally:
                await self._response.aclose()
            model = self._call.model
            self._call.restart_clock()
            body: dict[str, Any] | None = None
            if not self._said:
                body = self._call.body  # nothing but the role reached the client: ask again
            elif self._resumable:
                log.warning(
                    "model %s: stream cut after %d tokens (%s); resuming", model, self._tokens, cut
                )
                body = self._continuation()
            response = await self._transport.resend(self._call, body) if body else None
            self._resumed_at_tokens = self._tokens
            self._echo = "".join(self._text)
            if response is None or response.status_code != 200:
                if response is not None:
                    await response.aclose()
                _count(CUT_STREAMS, model, "ended_with_error")
                log.warning(
                    "model %s: stream cut after %d tokens (%s); ended with an error event",
                    model,
                    self._tokens,
                    cut,
                )
                yield self._error_event(model)
                return
            if self._said:
                _count(CUT_STREAMS, model, "resumed")
                log.warning("model %s: stream resumed after %d tokens", model, self._tokens)
            self._response = response

    def _strip_echo(self, content: str) -> str:
        if self._echo.startswith(content):
            self._echo = self._echo[len(content) :]
            return ""
        if content.startswith(self._echo):
            content, self._echo = content[len(self._echo) :], ""
            return content
        self._echo = ""  # not an echo after all: keep the text
        return content

    def _continuation(self) -> dict[str, Any]:
        body = dict(self._call.body)
        body["messages"] = [
            *body.get("messages", []),
            {"role": "assistant", "content": "".join(self._text)},
        ]
        for key in ("max_tokens", "max_completion_tokens", "n_predict"):
            if isinstance(body.get(key), int) and body[key] > 0:
                body[key] = max(1, body[key] - self._tokens)
        return body

    def _see(self, event: bytes) -> bytes | None:
        """What to forward of one SSE event (None: drop it)."""
        line = event.strip()
        if not line.startswith(b"data:"):
            return event
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self._finished = True
            return event
        try:
            chunk = json.loads(payload)
        except ValueError:
            return event
        if not isinstance(chunk, dict):
            return event
        if "error" in chunk:
            self._finished = True  # the backend's own error: pass it on, do not resume
            return event
        resumed = self._resumed_at_tokens is not None
        if self._first_id is None:
            self._first_id, self._first_created = chunk.get("id"), chunk.get("created")
        elif resumed:
            chunk["id"], chunk["created"] = self._first_id, self._first_created
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("tool_calls") or delta.get("reasoning_content"):
                self._resumable = False
                self._said = True
            content = delta.get("content")
            if content and self._echo:
                content = self._strip_echo(content)
                delta["content"] = content
            if content:
                self._text.append(content)
                self._tokens += 1
                self._said = True
            elif resumed and not choice.get("finish_reason") and set(delta) <= {"role", "content"}:
                return None  # the continuation's opening role chunk: the client had one
            if choice.get("finish_reason"):
                self._finished = True
        usage = chunk.get("usage")
        if resumed and isinstance(usage, dict):
            # The prefill was counted as prompt; the client's reply is all completion.
            before = self._resumed_at_tokens or 0
            usage["prompt_tokens"] = max(0, int(usage.get("prompt_tokens") or 0) - before)
            usage["completion_tokens"] = int(usage.get("completion_tokens") or 0) + before
        if not resumed:
            return event
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode()

    @staticmethod
    def _error_event(model: str) -> bytes:
        error = {
            "error": {
                "message": f"model {model}: the reply was cut off because the backend "
                "(llama-server) stopped; it is incomplete. Retry the request.",
                "type": "backend_unavailable",
                "code": "stream_cut",
            }
        }
        return b"data: " + json.dumps(error).encode() + b"\n\n"


def _retarget(request: httpx.Request, chosen: str | None, base: str | None) -> httpx.Request:
    """The request sent to ``base`` instead of ``chosen`` (same path, body and key: every
    inference host of a layout has the same llama-server key), with a short connect
    timeout for local hosts."""
    url = str(request.url)
    if base is not None and chosen is not None and base != chosen and url.startswith(chosen):
        url = base + url[len(chosen) :]
    extensions = dict(request.extensions)
    timeout = dict(extensions.get("timeout") or {})
    connect = timeout.get("connect")
    timeout["connect"] = CONNECT_TIMEOUT_S if connect is None else min(connect, CONNECT_TIMEOUT_S)
    extensions["timeout"] = timeout
    if url == str(request.url):
        request.extensions = extensions
        return request
    headers = httpx.Headers(request.headers)
    headers["host"] = httpx.URL(url).netloc.decode("ascii")
    return httpx.Request(
        request.method, url, headers=headers, content=request.content, extensions=extensions
    )


@dataclass(frozen=True)
class Waits:
    """How long a request may wait for its backend: before its first token, and to resume
    its stream once cut; and the hosts that serve its model (the one chosen first)."""

    first_token: float
    cut_stream: float
    bases: tuple[str, ...] = ()


def _requested_model(request: httpx.Request) -> str | None:
    """The model the request's JSON body names (LiteLLM sends it without the provider)."""
    try:
        body = json.loads(request.content)
    except (httpx.RequestNotRead, ValueError, TypeError):
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def waits_for_local_backend(request: httpx.Request) -> Waits | None:
    """None for other backends. For the local one: the configured wait, except before the
    first token when the model has a fallback (fail fast: the fallback answers, once every
    host of the model has been tried). A cut stream cannot fall back (the client has part
    of a reply), so it always waits."""
    found = local_group_of(str(request.url), _requested_model(request))
    if found is None:
        return None
    group, bases = found
    wait = settings().backend_wait_s
    return Waits(0.0 if has_fallbacks(group) else wait, wait, bases)


def install() -> None:
    """Route LiteLLM's OpenAI-compatible calls through the transport (idempotent)."""
    import litellm
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    current = litellm.aclient_session
    if current is not None and isinstance(
        getattr(current, "_transport", None), RestartTolerantTransport
    ):
        return
    # LiteLLM's transport for its OpenAI clients; None means httpx's own (the unit sets
    # DISABLE_AIOHTTP_TRANSPORT).
    inner = AsyncHTTPHandler.create_async_transport() or httpx.AsyncHTTPTransport()
    litellm.aclient_session = httpx.AsyncClient(
        transport=RestartTolerantTransport(inner), follow_redirects=True
    )
