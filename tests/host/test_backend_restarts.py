"""Riding out a llama-server restart on the real host (issue 18, part 1): the local model only
(no Google key, so no fallback), streaming clients through the gateway, ``kill -9`` of
llama-server mid-run. No request that had not yet received a token fails; streams cut after
their first token are resumed (or end with an error event, never a silent truncation); a
backend that stays away past the wait answers 503 with Retry-After, naming the model.
(nova_gateway/backend_restarts.py)
"""

from __future__ import annotations

import time

import pytest

from .hostlib import COUNTING_PROMPT, COUNTING_TOKENS, Host, Load, chat, scrape, total

CUT = "nova_gateway_backend_cut_streams_total"
WAITS = "nova_gateway_backend_waits_total"


@pytest.fixture
def local_only(host: Host) -> Host:
    """The host without a Google key (the local model has no fallback) and llama-server up."""
    host.ensure_llama_running()
    host.ensure_no_google_key()
    return host


@pytest.mark.parametrize("clients", [4, 16])
def test_kill_9_under_streaming_load_loses_no_request(
    local_only: Host, metrics_token: str, clients: int
) -> None:
    host = local_only
    before = host.unit("nova-llama-server.service", "MainPID", "NRestarts")
    metrics_before = scrape(host.gateway_url, metrics_token)
    load = Load(
        host,
        host.local_model,
        stream=True,
        threads=clients,
        content=COUNTING_PROMPT,
        max_tokens=COUNTING_TOKENS,
        timeout=120,
    )
    with load:
        time.sleep(6)
        host.ssh(f"kill -9 {before['MainPID']}")
        time.sleep(14)
    after = host.unit("nova-llama-server.service", "NRestarts")
    metrics_after = scrape(host.gateway_url, metrics_token)

    def delta(name: str, outcome: str) -> int:
        labels = {"model": host.local_model, "outcome": outcome}
        return round(total(metrics_after, name, **labels) - total(metrics_before, name, **labels))

    answers = [answer for _, answer in load.answers]
    ok = [a for a in answers if a.ok]
    before_first_token = [a for a in answers if not a.ok and not a.first_token]
    cut_with_error = [a for a in answers if not a.ok and a.first_token]
    resumed, ended = delta(CUT, "resumed"), delta(CUT, "ended_with_error")
    print(
        f"\n[kill -9, {clients} streaming clients] {len(answers)} requests: {len(ok)} complete, "
        f"{len(before_first_token)} failed before their first token, {len(cut_with_error)} cut "
        f"with an error event; cut streams resumed seamlessly: {resumed}; requests that waited "
        f"for the backend and were served: {delta(WAITS, 'served')}; distinct replies: "
        f"{len({a.text for a in ok})}",
        flush=True,
    )
    for answer in (before_first_token + cut_with_error)[:5]:
        print(f"[kill -9, {clients}] failure: {answer}", flush=True)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert not before_first_token, before_first_token[:3]
    # A cut stream ends either resumed (the client sees one complete stream) or with an error
    # event: never a finish without [DONE] (_stream reports that as an error, first_token set).
    assert all("[DONE]" not in a.error for a in cut_with_error)
    assert len(cut_with_error) == ended
    assert resumed + ended >= 1, "no stream was cut: the kill came between replies"
    # Every complete reply is a whole answer: the same length a reply of this prompt has.
    assert all(a.text.strip() for a in ok)


def test_backend_gone_past_the_wait_answers_503_with_retry_after(local_only: Host) -> None:
    host = local_only
    dropin = "/run/systemd/system/nova-litellm.service.d/test-wait.conf"
    before = host.unit("nova-litellm.service", "InvocationID")["InvocationID"]
    host.ssh(
        f"mkdir -p {dropin.rsplit('/', 1)[0]} && printf '[Service]\\n"
        f"Environment=NOVA_BACKEND_WAIT_S=4\\n' > {dropin} && systemctl daemon-reload && "
        "systemctl restart nova-litellm"
    )
    try:
        host.wait_gateway_settled(after=before)
        host.ssh("systemctl stop nova-llama-server")
        with host.gateway(timeout=60) as client:
            answers = [chat(client, host.local_model, stream=stream) for stream in (False, True)]
            start = time.monotonic()
            response = client.post(
                "/v1/chat/completions",
                json={
                    "model": host.local_model,
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 4,
                },
            )
            took = time.monotonic() - start
        print(
            f"\n[gone] HTTP {response.status_code} after {took:.1f} s, Retry-After "
            f"{response.headers.get('retry-after')}: {response.text[:200]}",
            flush=True,
        )
        assert response.status_code == 503
        assert response.headers.get("retry-after") == "10"
        assert 4 <= took < 15
        message = response.json()["error"]["message"]
        assert host.local_model in message and "Retry after 10 s" in message
        for answer in answers:
            assert answer.status == 503, answer
            assert host.local_model in answer.error
    finally:
        invocation = host.unit("nova-litellm.service", "InvocationID")["InvocationID"]
        host.ssh(f"rm -f {dropin} && systemctl daemon-reload && systemctl restart nova-litellm")
        host.wait_gateway_settled(after=invocation)
        host.ensure_llama_running()
