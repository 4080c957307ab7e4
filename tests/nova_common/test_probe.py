"""nova_common.probe: an answer, a timeout and an unreachable server are three plain outcomes."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from nova_common.probe import ProbeOutcome, probe, probe_async


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        body = b'{"status": "ok"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """Listening, never accepting: the connect succeeds, no answer ever comes."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def closed() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_an_answer(server):
    outcome = probe("GET", f"{server}/health", 2.0)
    assert outcome.ok and outcome.answered and outcome.status == 200
    assert outcome.elapsed_ms is not None and outcome.no_answer == ""
    assert outcome.response is not None and outcome.response.json() == {"status": "ok"}


def test_an_error_status_is_an_answer_but_not_ok(server):
    outcome = probe("GET", f"{server}/loading", 2.0)
    assert outcome.answered and not outcome.ok and outcome.status == 503


def test_a_wedged_server_times_out(silent):
    outcome = probe("POST", f"{silent}/completion", 0.3, json={"prompt": "ok"})
    assert not outcome.answered and outcome.timed_out
    assert outcome.no_answer == "no answer within 0.3 s"


def test_a_closed_port_is_unreachable(closed):
    outcome = probe("GET", f"{closed}/health", 2.0)
    assert outcome == ProbeOutcome("GET", f"{closed}/health", 2.0, error="ConnectError")
    assert outcome.no_answer == "unreachable (ConnectError)" and outcome.status is None


def test_proxy_variables_are_ignored(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    assert probe("GET", f"{server}/health", 2.0).ok


def test_async_on_the_callers_client(server, silent):
    async def both() -> tuple[ProbeOutcome, ProbeOutcome]:
        async with httpx.AsyncClient(trust_env=False) as client:
            return (
                await probe_async(client, "GET", f"{server}/health", 2.0),
                await probe_async(client, "GET", f"{silent}/health", 0.3),
            )

    answered, wedged = asyncio.run(both())
    assert answered.ok and answered.status == 200
    assert wedged.timed_out and wedged.no_answer == "no answer within 0.3 s"
