"""Fallbacks on the real host, under client load through the gateway.

* llama-server killed (``kill -9``): every request is answered, by Gemini (the stand-in) while
  the local model is down; systemd restarts llama-server and traffic returns to it. Streamed
  and not.
* Gemini down: requests for the Gemini model are answered by the local model.
* Both down: the client gets a clear error quickly (no hang), well inside the timeout.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from .hostlib import Answer, Host, Load, chat, scrape, served_by, total

pytestmark = pytest.mark.host


def allowed_failures(total: int) -> int:
    """Failures tolerated per case: the target is zero, and the figure is printed either way.

    Requests in flight when llama-server is killed may fail (streams that already had their first
    token cannot move). A systematic problem (e.g. the cooldown bug, 1376 of 1396 failed; or
    LiteLLM's aiohttp transport reusing connections llama-server had dropped after a stream,
    1-2%) stays above this bound or is visible in the printed figures.
    """
    return max(1, total // 100)


def _summary(answers: list[Answer]) -> Counter:
    counts: Counter = Counter(served_by(a) for a in answers)
    counts["fallback_header"] = sum(1 for a in answers if a.fallbacks >= 1)
    return counts


def _wait_llama_restarted(host: Host, old_pid: str, timeout: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        state = host.unit("nova-llama-server.service", "ActiveState", "MainPID")
        if state["ActiveState"] == "active" and state["MainPID"] not in ("0", old_pid):
            return time.monotonic() - start
        time.sleep(0.3)
    raise AssertionError(f"llama-server not restarted by systemd after {timeout} s")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_llama_server_killed_under_load(with_key: Host, stream: bool) -> None:
    host = with_key
    before = host.unit("nova-llama-server.service", "MainPID", "NRestarts")
    with Load(host, host.local_model, stream=stream) as load:
        time.sleep(3)
        t_kill = time.monotonic()
        host.ssh(f"kill -9 {before['MainPID']}")
        restarted = _wait_llama_restarted(host, before["MainPID"])
        t_back = time.monotonic()
        back = load.wait_for(t_back, "local", timeout=90)
        time.sleep(1)
    all_answers = [a for _, a in load.answers]
    during = load.since(t_kill)
    # A stream cut after its first token (llama-server killed while it was answering) cannot
    # be taken over by a fallback: the client already has part of an answer. Counted apart.
    mid_stream = [a for a in all_answers if not a.ok and a.first_token]
    failed = [a for a in all_answers if not a.ok and not a.first_token]
    counts = _summary(during)
    after = host.unit("nova-llama-server.service", "NRestarts")
    kind = "stream" if stream else "plain"
    print(
        f"\n[fallback/{kind}] {len(all_answers)} requests, {len(failed)} failed"
        + (f" (+{len(mid_stream)} cut mid-stream)" if stream else "")
        + f"; after the kill: {dict(counts)}; llama-server restarted by systemd in "
        f"{restarted:.1f} s; local model answering again "
        f"{back if back is None else round(back, 1)} s later",
        flush=True,
    )
    for answer in (failed + mid_stream)[:5]:
        print(f"[fallback/{kind}] failure: {answer}", flush=True)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert len(failed) <= allowed_failures(len(all_answers)), failed[:3]
    assert len(mid_stream) <= load.threads  # only streams in flight at the kill
    assert counts["gemini"] >= 1 and counts["fallback_header"] >= 1
    assert back is not None, "traffic did not return to the local model"
    # Every answer Gemini gave for the local model is flagged as a fallback.
    assert all(a.fallbacks >= 1 for a in during if served_by(a) == "gemini")


@pytest.mark.parametrize(
    "stream",
    [False, True],
    ids=["plain", "stream"],
)
def test_gemini_down_falls_back_to_local(with_key: Host, stream: bool, metrics_token: str) -> None:
    host = with_key
    fallbacks = "litellm_deployment_successful_fallbacks_total"
    before = total(scrape(host.gateway_url, metrics_token), fallbacks)
    host.gemini.set_mode(down=True)
    with Load(host, host.gemini_model, stream=stream, threads=2) as load:
        time.sleep(8)
    answers = [a for _, a in load.answers]
    counts = _summary(answers)
    failed = [a for a in answers if not a.ok]
    kind = "stream" if stream else "plain"
    gemini_calls = len(host.gemini.logged("POST", "enerateContent"))
    print(
        f"\n[gemini-down/{kind}] {len(answers)} requests for {host.gemini_model}, "
        f"{len(failed)} failed, {dict(counts)}; {gemini_calls} reached the (down) stand-in",
        flush=True,
    )
    for answer in failed[:5]:
        print(f"[gemini-down/{kind}] failure: {answer}", flush=True)
    assert len(failed) <= allowed_failures(len(answers)), failed[:3]
    assert counts["local"] == len(answers)
    assert counts["fallback_header"] == len(answers)
    # Prometheus counts each of them (nova_gateway/metrics.py hands LiteLLM's series the event).
    counted = total(scrape(host.gateway_url, metrics_token), fallbacks) - before
    print(f"[gemini-down/{kind}] {counted:.0f} successful fallbacks counted on /metrics")
    assert counted == len(answers)
    host.gemini.reset()


def test_both_down_fails_fast_with_a_clear_error(with_key: Host, metrics_token: str) -> None:
    host = with_key
    timeout = float(host.ssh("grep -E '^ *request_timeout:' " + host.gateway_config).split()[-1])
    failed_metric = "litellm_proxy_failed_requests_metric_total"
    before = total(scrape(host.gateway_url, metrics_token), failed_metric)
    host.ssh("systemctl stop nova-llama-server")
    host.gemini.set_mode(down=True)
    try:
        results = []
        with host.gateway(timeout=timeout + 30) as client:
            for model in (host.local_model, host.gemini_model):
                for stream in (False, True):
                    answer = chat(client, model, stream=stream)
                    results.append((model, stream, answer))
        for model, stream, answer in results:
            print(
                f"\n[both-down] {model} stream={stream}: HTTP {answer.status} in "
                f"{answer.seconds:.2f} s (timeout {timeout:.0f} s): {answer.error[:160]}",
                flush=True,
            )
        for model, stream, answer in results:
            assert not answer.ok
            # A backend's failure, not ours: 503, never 500; named by our hook where LiteLLM
            # lets it rewrite the error (not a stream whose first chunk failed in the fallback).
            assert answer.status == 503, answer
            if not stream or model == host.local_model:
                assert f"model {model} is unavailable" in answer.error
            assert answer.seconds < timeout
        # Each failure is counted on /metrics.
        after = total(scrape(host.gateway_url, metrics_token), failed_metric)
        print(f"[both-down] {after - before:.0f} failed requests counted on /metrics", flush=True)
        assert after - before == len(results)
    finally:
        host.gemini.reset()
        host.ensure_llama_running()
    waited = host.wait_routes_normal()
    print(f"[both-down] restored; both routes normal again after {waited:.1f} s", flush=True)
