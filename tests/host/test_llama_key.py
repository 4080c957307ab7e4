"""llama-server's API key on the real host (issue 18, part 4): without it llama-server answers
/health only; the key reaches it, and everything that calls it, as a systemd credential, never
on a command line or in the journal; the gateway, discovery, the watchdog and Prometheus all
still get their answers."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from .hostlib import PROMETHEUS_PORT, Host, chat
from .test_users import add_user, gateway_key, unique

pytestmark = pytest.mark.host

CALLERS = ("nova-llama-server", "nova-litellm", "nova-settings", "nova-watchdog", "prometheus")


def test_without_the_key_llama_server_answers_health_only(host: Host) -> None:
    host.ensure_llama_running()
    with httpx.Client(base_url=host.llama_url, timeout=30) as client:
        assert client.get("/health").status_code == 200
        for path in ("/v1/models", "/props", "/metrics", "/slots"):
            assert client.get(path).status_code == 401, path
            wrong = {"authorization": "Bearer nl-wrong"}
            assert client.get(path, headers=wrong).status_code == 401, path
        answer = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert answer.status_code == 401
        key = {"authorization": f"Bearer {host.llama_key}"}
        assert client.get("/v1/models", headers=key).status_code == 200


def test_the_key_is_no_command_line_and_no_log_line(host: Host) -> None:
    assert host.llama_key.startswith("nl-")
    command_lines = host.ssh("ps -eo args=")
    assert "--api-key-file /run/credentials/nova-llama-server.service/api-key" in command_lines
    assert host.llama_key not in command_lines
    journal = host.ssh("journalctl -b --no-pager -o cat " + " ".join(f"-u {u}" for u in CALLERS))
    assert host.llama_key not in journal


def test_every_caller_still_gets_its_answer(host: Host) -> None:
    host.ensure_llama_running()
    # The gateway's local model, and (a user's request) its max_tokens limit from /props.
    with host.gateway(timeout=60) as client:
        assert chat(client, host.local_model).ok
    key = gateway_key(host, add_user(host, unique("keyed")))
    too_many = httpx.post(
        f"{host.gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={
            "model": host.local_model,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 10**6,
        },
        timeout=60,
    )
    assert too_many.status_code == 400 and "exceeds the limit" in too_many.text, too_many.text
    # Discovery: the local model's context comes from /props.
    local = host.settings_models()[host.local_model]
    assert local["available"] and local["context"], local
    # The watchdog's probes (/completion, and /metrics when that times out) pass.
    host.ssh("systemctl start nova-watchdog.service")
    state = json.loads(host.ssh("cat /var/lib/nova-watchdog/state.json"))["targets"]
    assert state["llama-server"]["failures"] == 0, state["llama-server"]
    assert state["llama-server"]["last_ok"] > time.time() - 120, state["llama-server"]
    # Prometheus scrapes llama-server with its copy of the key.
    deadline = time.monotonic() + 60
    while True:
        targets = httpx.get(f"http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/targets", timeout=10)
        llama = [
            t
            for t in targets.json()["data"]["activeTargets"]
            if t["labels"]["job"] == "llama-server"
        ]
        if (llama and llama[0]["health"] == "up") or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert llama[0]["health"] == "up", llama[0]["lastError"]
