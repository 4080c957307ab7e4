"""nova_common.probe: an answer, a timeout and an unreachable server are three plain outcomes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from nova_common.ports import free_port
from nova_common.probe import ProbeOutcome, probe, probe_async
from tests.standins.upstreams import Standin, silent_socket


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    standin = Standin({("GET", "/health"): (200, {"status": "ok"}), ("GET", "/loading"): (503, {})})
    yield standin.url
    standin.close()


@pytest.fixture
def silent() -> Iterator[str]:
    with silent_socket() as sock:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def closed() -> str:
    return f"http://127.0.0.1:{free_port()}"


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
    assert not outcome.answered and outcome.timed_out and outcome.error == "ReadTimeout"
    assert outcome.no_answer == "no answer within 0.3 s"


def test_a_closed_port_is_unreachable(closed):
    outcome = probe("GET", f"{closed}/health", 2.0)
    assert not outcome.answered and not outcome.timed_out and outcome.error == "ConnectError"
    assert isinstance(outcome.exception, httpx.ConnectError)
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
