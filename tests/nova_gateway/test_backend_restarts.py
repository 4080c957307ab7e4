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
