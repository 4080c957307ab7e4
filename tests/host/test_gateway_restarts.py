"""Riding out the gateway's own restart on the real host (issue 18): systemd holds the gateway's
listening socket (nova-litellm.socket, nova_gateway/serve.py), so while nova-litellm restarts
clients wait in the socket's backlog instead of being refused, and streams in flight finish
(systemd stops the old workers with SIGTERM; uvicorn drains them)."""

from __future__ import annotations

import socket
import time

import pytest

from .hostlib import COUNTING_PROMPT, COUNTING_TOKENS, Host, Load


@pytest.fixture
def settled(host: Host) -> Host:
    host.ensure_llama_running()
    host.wait_gateway_settled()
    return host


def test_the_socket_is_held_by_systemd_and_served_by_the_gateway(settled: Host) -> None:
    host = settled
    assert host.ssh("systemctl is-active nova-litellm.socket").strip() == "active"
    listeners = host.ssh(f"ss -ltnpH 'sport = :{host.gateway_port}'")
    # One listening socket on loopback, held by systemd and passed to the gateway's workers.
    assert listeners.count("LISTEN") == 1, listeners
    assert f"127.0.0.1:{host.gateway_port}" in listeners
    assert '"systemd",pid=1' in listeners and "python" in listeners, listeners


@pytest.mark.parametrize("how", ["kill -9", "restart"])
def test_a_gateway_restart_under_streaming_load_loses_no_request(settled: Host, how: str) -> None:
    host = settled
    before = host.unit("nova-litellm.service", "MainPID", "NRestarts", "InvocationID")
    load = Load(
        host,
        host.local_model,
        stream=True,
        threads=4,
        content=COUNTING_PROMPT,
        max_tokens=COUNTING_TOKENS,
        timeout=120,
    )
    refused = 0
    with load:
        time.sleep(5)
        t0 = time.monotonic()
        if how == "kill -9":
            host.ssh(f"kill -9 {before['MainPID']}")
        else:
            host.ssh("systemctl restart --no-block nova-litellm")
        # Meanwhile the port never refuses a connection.
        while time.monotonic() - t0 < 8:
            try:
                with socket.create_connection(("127.0.0.1", host.gateway_port), timeout=2):
                    pass
            except ConnectionRefusedError:
                refused += 1
            time.sleep(0.2)
        waited = host.wait_gateway_settled(after=before["InvocationID"])
        t_back = time.monotonic()
        # Served by the new gateway for a few seconds too.
        time.sleep(5)
    after = host.unit("nova-litellm.service", "NRestarts")
    answers = [answer for _, answer in load.answers]
    failed = [a for a in answers if not a.ok]
    during = load.since(t0)
    print(
        f"\n[gateway {how}, 4 streaming clients] {len(answers)} requests, {len(failed)} failed; "
        f"{len(during)} finished after the {how}; the gateway answered again after "
        f"{t_back - t0:.1f} s (settled check {waited:.1f} s); refused connections: {refused}",
        flush=True,
    )
    for answer in failed[:5]:
        print(f"[gateway {how}] failure: {answer}", flush=True)
    if how == "kill -9":
        assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert refused == 0
    assert not failed, failed[:3]
    assert len(during) >= 4
    assert all(a.text.strip() for a in answers)
