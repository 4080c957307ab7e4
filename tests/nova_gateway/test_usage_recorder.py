"""The gateway's usage batches (nova_gateway/usage.py) against the real settings service: sent
in bounded batches, kept when the service does not answer, sent at exit."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import httpx
import pytest

from nova_gateway import usage
from nova_gateway.settings import settings

from ..nova_settings.conftest import MASTER_KEY, run_service


@pytest.fixture
def service(tmp_path, upstreams, monkeypatch):
    with run_service(tmp_path / "state", upstreams) as svc:
        monkeypatch.setenv("NOVA_SETTINGS_URL", svc.url)
        monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER_KEY)
        settings.cache_clear()
        yield svc
    settings.cache_clear()


def totals(svc) -> dict[str, tuple[int, int, int]]:
    with contextlib.closing(sqlite3.connect(svc.db_path)) as conn:
        return {
            model: (requests, prompt, completion)
            for model, requests, prompt, completion in conn.execute(
                "SELECT model, requests, prompt_tokens, completion_tokens FROM usage"
            )
        }


def test_counts_are_summed_sent_in_bounded_batches_and_kept_on_failure(service, monkeypatch):
    recorder = usage.UsageRecorder()
    for i in range(usage.BATCH_ROWS + 5):  # more rows than one POST carries
        recorder.add(0, f"model-{i}", prompt_tokens=3, completion_tokens=4)
    recorder.add(0, "model-0", prompt_tokens=1, completion_tokens=1)

    # The service unreachable: nothing is lost, everything waits for the next batch.
    monkeypatch.setenv("NOVA_SETTINGS_URL", "http://127.0.0.1:9")
    settings.cache_clear()

    async def flush() -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            await recorder.flush(client)

    asyncio.run(flush())
    assert len(recorder.pending) == usage.BATCH_ROWS + 5
    assert totals(service) == {}

    monkeypatch.setenv("NOVA_SETTINGS_URL", service.url)
    settings.cache_clear()
    asyncio.run(flush())
    assert recorder.pending == {}
    got = totals(service)
    assert len(got) == usage.BATCH_ROWS + 5
    assert got["model-0"] == (2, 4, 5) and got["model-7"] == (1, 3, 4)


def test_what_is_held_at_exit_is_sent(service):
    recorder = usage.UsageRecorder()
    recorder.add(0, "late-model", prompt_tokens=2, completion_tokens=9)
    recorder.flush_at_exit()
    assert totals(service) == {"late-model": (1, 2, 9)}
