"""backend_restarts' transport in isolation: a scripted backend under it (httpx.MockTransport
playing llama-server's side of the wire: refused connections, a stream cut mid-reply, the
prefill echo). The real thing, kill -9 of the real llama-server under load, is
tests/host/test_backend_restarts.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from nova_gateway import backend_restarts
from nova_gateway.backend_restarts import RestartTolerantTransport, Waits

URL = "http://127.0.0.1:8080/v1/chat/completions"
MODEL = "local-model"


def sse(chunks: list[dict[str, Any]], done: bool = True) -> list[bytes]:
    out = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
    return out + ([b"data: [DONE]\n\n"] if done else [])


def chunk(cid: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict:
    return {"id": cid, "created": 1, "choices": [{"index": 0, "delta": delta,
            "finish_reason": finish}], **extra}  # fmt: skip


class Body(httpx.AsyncByteStream):
    """Yields its events, then (``cut``) drops the connection like a killed llama-server."""

    def __init__(self, events: list[bytes], cut: bool = False) -> None:
        self.events, self.cut = events, cut

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            yield event
        if self.cut:
            raise httpx.RemoteProtocolError("peer closed connection")


def backend(*answers: Callable[[dict], httpx.Response] | Exception) -> tuple[Any, list[dict]]:
    """A MockTransport answering successive requests in turn; the bodies it received."""
    seen: list[dict] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(seen[-1])

    return httpx.MockTransport(handle), seen


def streaming(events: list[bytes], cut: bool = False) -> Callable[[dict], httpx.Response]:
    return lambda _body: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Body(events, cut)
    )


async def post(transport: httpx.AsyncBaseTransport, body: dict) -> tuple[int, dict, bytes]:
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post(URL, json=body)
        return response.status_code, dict(response.headers), await response.aread()


def run(transport: httpx.AsyncBaseTransport, body: dict) -> tuple[int, dict, bytes]:
    return asyncio.run(post(transport, body))


def events(raw: bytes) -> list[Any]:
    out = []
    for block in raw.split(b"\n\n"):
        if block.startswith(b"data: "):
            data = block[6:]
            out.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return out


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_restarts, "POLL_S", 0.01)


def tolerant(inner: httpx.AsyncBaseTransport, wait: float = 2.0) -> RestartTolerantTransport:
    return RestartTolerantTransport(inner, waits=lambda _request: Waits(wait, wait))


REQUEST = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Count to five."}],
    "max_tokens": 10,
    "stream": True,
}


def test_a_stream_cut_mid_reply_is_resumed_as_one_stream() -> None:
    first = sse(
        [
            chunk("a", {"role": "assistant", "content": None}),
            chunk("a", {"content": "One,"}),
            chunk("a", {"content": " two,"}),
        ],
        done=False,
    )
    # llama-server repeats the prefill at the start of the continuation's content.
    second = sse(
        [
            chunk("b", {"role": "assistant", "content": None}),
            chunk("b", {"content": "One, two, three"}),
            chunk("b", {"content": "."}, finish="stop"),
            {"id": "b", "created": 2, "choices": [],
             "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22}},
        ]
    )  # fmt: skip
    inner, seen = backend(
        streaming(first, cut=True), httpx.ConnectError("refused"), streaming(second)
    )
    status, _headers, raw = run(tolerant(inner), REQUEST)
    got = events(raw)
    assert status == 200 and got[-1] == "[DONE]"
    chunks = got[:-1]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "One, two, three."
    assert {c["id"] for c in chunks} == {"a"}
    assert sum(1 for c in chunks if c["choices"] and "role" in c["choices"][0]["delta"]) == 1
    assert chunks[-1]["usage"] == {"prompt_tokens": 18, "completion_tokens": 4, "total_tokens": 22}
    continuation = seen[-1]
    assert continuation["messages"][-1] == {"role": "assistant", "content": "One, two,"}
    assert continuation["max_tokens"] == 8


def test_a_request_waits_for_the_backend_then_is_served() -> None:
    ok = lambda _body: httpx.Response(200, json={"choices": []})  # noqa: E731
    inner, seen = backend(httpx.ConnectError("refused"), httpx.ConnectError("refused"), ok)
    status, _headers, _raw = run(tolerant(inner), {**REQUEST, "stream": False})
    assert status == 200 and len(seen) == 3


def test_past_the_wait_the_answer_is_503_with_retry_after() -> None:
    inner, _seen = backend(*[httpx.ConnectError("refused")] * 1000)
    status, headers, raw = run(tolerant(inner, wait=0.1), {**REQUEST, "stream": False})
    assert status == 503
    assert headers["retry-after"] == "10" and headers["x-should-retry"] == "false"
    assert MODEL in json.loads(raw)["error"]["message"]


def test_one_host_past_the_wait_is_503_too() -> None:
    """As deployed with one inference host: the call knows its one host (no other to try)."""
    inner, seen = backend(*[httpx.ConnectError("refused")] * 1000)
    base = URL.removesuffix("/chat/completions")
    transport = RestartTolerantTransport(inner, waits=lambda _r: Waits(0.1, 0.1, (base,)))
    status, headers, _raw = run(transport, {**REQUEST, "stream": False})
    assert status == 503 and headers["retry-after"] == "10"
    assert 1 < len(seen) < 100  # polled every POLL_S, not in a busy loop


def test_a_stream_that_cannot_be_continued_ends_with_an_error_event() -> None:
    cut = sse([chunk("a", {"role": "assistant"}), chunk("a", {"content": '{"a":'})], done=False)
    inner, seen = backend(streaming(cut, cut=True))
    body = {**REQUEST, "response_format": {"type": "json_object"}}
    status, _headers, raw = run(tolerant(inner), body)
    got = events(raw)
    assert status == 200 and "[DONE]" not in got
    assert "incomplete" in got[-1]["error"]["message"] and len(seen) == 1


def test_other_backends_pass_straight_through() -> None:
    inner, seen = backend(httpx.ConnectError("refused"))
    transport = RestartTolerantTransport(inner, waits=lambda _request: None)
    with pytest.raises(httpx.ConnectError):
        run(transport, REQUEST)
    assert len(seen) == 1


# --- several inference hosts serving one model ------------------------------------------------

HOST_A = "http://10.0.0.1:8080/v1"
HOST_B = "http://10.0.0.2:8080/v1"


def hosts(up: dict[str, bool]) -> tuple[httpx.MockTransport, list[str]]:
    """Hosts by api_base: an up one answers, a down one refuses. The hosts each request
    reached (its Host header must match its URL)."""
    reached: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        base = next(b for b in up if str(request.url).startswith(b))
        assert request.headers["host"] == request.url.netloc.decode()
        assert request.extensions["timeout"]["connect"] <= backend_restarts.CONNECT_TIMEOUT_S
        reached.append(base)
        if not up[base]:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={"choices": [], "host": base})

    return httpx.MockTransport(handle), reached


def across(inner: httpx.AsyncBaseTransport, wait: float = 2.0) -> RestartTolerantTransport:
    def waits(request: httpx.Request) -> Waits:
        chosen = HOST_A if str(request.url).startswith(HOST_A) else HOST_B
        return Waits(wait, wait, (chosen, *(b for b in (HOST_A, HOST_B) if b != chosen)))

    return RestartTolerantTransport(inner, waits=waits)


async def post_to(transport: httpx.AsyncBaseTransport, base: str) -> tuple[int, dict]:
    async with httpx.AsyncClient(transport=transport) as client:
        body = {**REQUEST, "stream": False}
        response = await client.post(f"{base}/chat/completions", json=body)
        return response.status_code, response.json()


def test_a_dead_host_is_left_out_and_taken_back_when_it_answers_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backend_restarts, "LEAVE_OUT_S", 0.2)
    up = {HOST_A: False, HOST_B: True}
    inner, reached = hosts(up)
    transport = across(inner)

    async def scenario() -> None:
        # LiteLLM chose A, which refuses: B answers at once, no wait.
        assert await post_to(transport, HOST_A) == (200, {"choices": [], "host": HOST_B})
        assert reached == [HOST_A, HOST_B]
        # While A is left out, requests routed to it go to B without trying A.
        reached.clear()
        assert (await post_to(transport, HOST_A))[1]["host"] == HOST_B
        assert reached == [HOST_B]
        # A is back; once its leave-out ends it gets its requests again.
        up[HOST_A] = True
        await asyncio.sleep(0.25)
        reached.clear()
        assert (await post_to(transport, HOST_A))[1]["host"] == HOST_A
        assert reached == [HOST_A]

    asyncio.run(scenario())


def test_with_every_host_down_a_request_waits_for_the_first_back() -> None:
    up = {HOST_A: False, HOST_B: False}
    inner, reached = hosts(up)
    transport = across(inner)

    async def scenario() -> tuple[int, dict]:
        async def revive() -> None:
            await asyncio.sleep(0.1)
            up[HOST_B] = True

        task = asyncio.create_task(revive())
        result = await post_to(transport, HOST_A)
        await task
        return result

    status, body = asyncio.run(scenario())
    assert status == 200 and body["host"] == HOST_B
    assert {HOST_A, HOST_B} <= set(reached) and len(reached) > 2


def test_with_a_fallback_every_host_is_tried_once_before_the_503() -> None:
    inner, reached = hosts({HOST_A: False, HOST_B: False})
    status, body = asyncio.run(post_to(across(inner, wait=0.0), HOST_A))
    assert status == 503 and MODEL in body["error"]["message"]
    assert reached == [HOST_A, HOST_B]


def test_a_stream_cut_on_one_host_resumes_on_another() -> None:
    first = sse([chunk("a", {"role": "assistant"}), chunk("a", {"content": "One,"})], done=False)
    second = sse([chunk("b", {"role": "assistant"}), chunk("b", {"content": "One, two."},
                  finish="stop")])  # fmt: skip
    reached: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        base = HOST_A if str(request.url).startswith(HOST_A) else HOST_B
        reached.append(base)
        if base == HOST_A and len(reached) > 1:
            raise httpx.ConnectError("refused")  # A died with the cut
        events = first if base == HOST_A else second
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              stream=Body(events, cut=base == HOST_A))  # fmt: skip

    async def scenario() -> bytes:
        async with httpx.AsyncClient(transport=across(httpx.MockTransport(handle))) as client:
            response = await client.post(f"{HOST_A}/chat/completions", json=REQUEST)
            return await response.aread()

    got = events(asyncio.run(scenario()))
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in got[:-1])
    assert got[-1] == "[DONE]" and text == "One, two."
    assert reached == [HOST_A, HOST_A, HOST_B]
