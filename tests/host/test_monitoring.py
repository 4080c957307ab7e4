"""Monitoring on the real host (issue 17): every service's /metrics scraped by Prometheus, the
gateway's counters following real requests, an alert that fires and resolves, the rules' unit
tests, and no secret in any metric."""

from __future__ import annotations

import json
import time

import httpx
import openai

from .hostlib import PROMETHEUS_PORT, Host, scrape, total, wait_healthy
from .test_users import add_user, gateway_key, unique

PROMETHEUS = f"http://127.0.0.1:{PROMETHEUS_PORT}"


def alerts() -> list[dict]:
    response = httpx.get(f"{PROMETHEUS}/api/v1/alerts", timeout=10)
    response.raise_for_status()
    return response.json()["data"]["alerts"]


def test_prometheus_scrapes_every_service(host: Host) -> None:
    wait_healthy(host)
    deadline = time.monotonic() + 60
    while True:
        targets = httpx.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]
        health = {t["labels"]["job"]: t["health"] for t in targets["activeTargets"]}
        if set(health.values()) == {"up"} or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert health == {
        "llama-server": "up",
        "gateway": "up",
        "settings": "up",
        "prometheus": "up",
    }, [(t["labels"]["job"], t["lastError"]) for t in targets["activeTargets"]]


def test_gateway_counters_follow_requests_and_tokens(host: Host, metrics_token: str) -> None:
    wait_healthy(host)
    name = unique("metered")
    key = gateway_key(host, add_user(host, name))
    client = openai.OpenAI(base_url=f"{host.gateway_url}/v1", api_key=key, max_retries=0)
    n, completion_tokens = 4, 0
    for i in range(n - 1):
        reply = client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": f"Count to {i + 2}."}],
            max_tokens=12,
        )
        completion_tokens += reply.usage.completion_tokens
    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Count to 5."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    completion_tokens += [chunk for chunk in stream if chunk.usage][-1].usage.completion_tokens
    text = scrape(host.gateway_url, metrics_token)
    assert total(text, "litellm_proxy_total_requests_metric_total", user=name) == n
    assert total(text, "litellm_output_tokens_metric_total", user=name) == completion_tokens
    # Time to first token: streams only (LiteLLM's rule, kept by metrics_tuning's fast path).
    assert total(text, "litellm_llm_api_time_to_first_token_metric_count", user=name) == 1
    assert total(text, "litellm_request_total_latency_metric_count", user=name) == n
    # What the metrics themselves cost, counted by the gateway (nova_gateway/metrics_cost.py).
    assert total(text, "nova_gateway_metrics_cpu_seconds_total", part="hooks") > 0
    # nova-settings counts the same requests from the gateway's usage reports.
    deadline = time.monotonic() + 20
    while True:
        settings_text = scrape(host.settings_url, metrics_token)
        if total(settings_text, "nova_usage_requests_total", user=name) >= n:
            break
        assert time.monotonic() < deadline, "usage did not reach nova-settings' /metrics"
        time.sleep(1)
    tokens = total(settings_text, "nova_usage_completion_tokens_total", user=name)
    assert tokens == completion_tokens


def test_the_metrics_token_reads_metrics_and_calls_nothing(host: Host, metrics_token: str) -> None:
    assert httpx.get(f"{host.gateway_url}/metrics", timeout=10).status_code == 401
    assert httpx.get(f"{host.settings_url}/metrics", timeout=10).status_code == 401
    answer = httpx.post(
        f"{host.gateway_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {metrics_token}"},
        json={"model": host.local_model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert answer.status_code == 403, answer.text


def test_no_secret_in_any_metric(host: Host, metrics_token: str) -> None:
    name = unique("secretive")
    token = add_user(host, name)
    key = gateway_key(host, token)
    openai.OpenAI(base_url=f"{host.gateway_url}/v1", api_key=key, max_retries=0).models.list()
    texts = [
        scrape(host.gateway_url, metrics_token),
        scrape(host.settings_url, metrics_token),
        scrape(host.llama_url, host.llama_key),
        httpx.get(f"{PROMETHEUS}/api/v1/label/__name__/values", timeout=10).text,
    ]
    secrets = [host.gateway_key, metrics_token, host.settings_token, token, key, host.gemini_key]
    secrets.append(host.llama_key)
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "nk-" not in text and "sk-nova-" not in text


def test_alert_rules_pass_their_unit_tests(host: Host) -> None:
    out = host.ssh("promtool test rules /etc/prometheus/rules/nova.rules.test.yml 2>&1")
    assert "SUCCESS" in out, out


def test_a_stopped_llama_server_fires_service_down_and_it_resolves(host: Host) -> None:
    wait_healthy(host)

    def firing() -> bool:
        return any(
            a["labels"].get("alertname") == "NovaServiceDown"
            and a["labels"].get("job") == "llama-server"
            and a["state"] == "firing"
            for a in alerts()
        )

    assert not firing()
    host.ssh("systemctl stop nova-llama-server")
    try:
        started = time.monotonic()
        while not firing():  # scrape 5 s + for 15 s + evaluation 5 s on the test host
            assert time.monotonic() - started < 90, "NovaServiceDown never fired"
            time.sleep(2)
        print(f"\n[monitoring] NovaServiceDown fired {time.monotonic() - started:.0f} s after stop")
        # nova-diagnose shows it too, with the last values of the key series.
        report = json.loads(host.ssh("nova-diagnose --json --no-chat", check=False))
        names = [a["name"] for a in report["monitoring"]["firing"]]
        assert "NovaServiceDown" in names, report["monitoring"]
        assert "gateway requests/s" in report["monitoring"]["series"]
        assert any("NovaServiceDown" in f["message"] for f in report["findings"])
    finally:
        host.ensure_llama_running()
    started = time.monotonic()
    while firing():
        assert time.monotonic() - started < 90, "NovaServiceDown did not resolve"
        time.sleep(2)
    wait_healthy(host)


def test_status_plots_come_from_prometheus(host: Host) -> None:
    wait_healthy(host)
    key = gateway_key(host, add_user(host, unique("plotted")))
    client = openai.OpenAI(base_url=f"{host.gateway_url}/v1", api_key=key, max_retries=0)
    client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    web = httpx.Client(base_url=host.settings_url, timeout=30)
    try:
        assert web.post("/signin", data={"token": host.settings_token}).status_code == 303
        deadline = time.monotonic() + 60
        while True:  # two scrapes of the new counter make a rate
            fragment = web.get("/plots?view=status&span=1h").text
            requests_plot = fragment.split("<strong>Gateway requests and errors</strong>")[1]
            requests_plot = requests_plot.split("</figure>")[0]
            if "<polyline" in requests_plot or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert "<polyline" in requests_plot, requests_plot
        assert "Prometheus did not answer" not in fragment
    finally:
        web.close()
