"""GET /metrics of nova-settings: only for the metrics token; requests per route template, key
validations by outcome, usage per user and model, host gauges; never a secret."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from nova_common.gateway_identity import utc_day

from .conftest import (
    GOOGLE_KEY,
    LOCAL_MODEL,
    MASTER_KEY,
    Backend,
    Service,
    Upstreams,
    run_service,
)

METRICS_TOKEN = "nm-metrics-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def svc(
    tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams, backend: Backend
) -> Iterator[Service]:
    state = tmp_path_factory.mktemp("metrics") / "state"
    token_file = state.parent / "metrics-token"
    token_file.write_text(METRICS_TOKEN + "\n")
    watchdog = state.parent / "watchdog.json"
    watchdog.write_text('{"version": 1, "targets": {"gateway": {"failures": 1, "restarts": 2}}}')
    env = {
        "NOVA_METRICS_TOKEN_FILE": str(token_file),
        "NOVA_MODEL_DIR": str(state.parent),
        "NOVA_WATCHDOG_STATE": str(watchdog),
        "NOVA_METRICS_SAMPLE_S": "0.5",
    }
    with run_service(state, upstreams, env_overrides=env, backend=backend) as service:
        yield service


def scrape(svc: Service) -> str:
    response = httpx.get(
        f"{svc.url}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_need_the_metrics_token(svc: Service, service: Service) -> None:
    assert httpx.get(f"{svc.url}/metrics").status_code == 401
    for token in (svc.token, MASTER_KEY, "x" * 40):  # a user's token or the master key: no
        r = httpx.get(f"{svc.url}/metrics", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 401
    # No metrics token configured: /metrics is off.
    assert httpx.get(f"{service.url}/metrics").status_code == 404


def test_requests_are_counted_per_route_template(svc: Service) -> None:
    series = (
        'nova_settings_request_duration_seconds_count{method="GET",route="/api/users/{name}"'
        ',status="4xx"}'
    )
    before = value(scrape(svc), series)
    with svc.client() as client:
        for name in ("nobody-1", "nobody-2", "nobody-3"):
            assert client.get(f"/api/users/{name}").status_code == 405
    assert value(scrape(svc), series) == before + 3  # one series for any name


def test_key_validations_and_usage_per_user_and_model(svc: Service) -> None:
    series = 'nova_settings_key_validations_total{outcome="valid",provider="google"}'
    before = value(scrape(svc), series)
    with svc.client() as client:
        r = client.post(
            "/api/user-settings/validate-api-key",
            json={"provider": "google", "api_key": GOOGLE_KEY},
        )
        assert r.json()["status"] == "valid"
    record = {
        "user_id": 1,
        "day": utc_day(),
        "model": LOCAL_MODEL,
        "requests": 3,
        "errors": 1,
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "cost": 0.0,
    }
    with httpx.Client(headers={"authorization": f"Bearer {MASTER_KEY}"}) as gateway:
        assert (
            gateway.post(f"{svc.url}/internal/usage", json={"records": [record]}).status_code == 204
        )
    text = scrape(svc)
    assert value(text, series) == before + 1
    labels = f'{{model="{LOCAL_MODEL}",user="alice"}}'
    assert value(text, f"nova_usage_requests_total{labels}") >= 3
    assert value(text, f"nova_usage_completion_tokens_total{labels}") >= 12
    for secret in (METRICS_TOKEN, MASTER_KEY, GOOGLE_KEY, svc.token):
        assert secret not in text


def test_host_gauges_are_sampled(svc: Service) -> None:
    text = scrape(svc)
    assert value(text, "nova_gpu_available") in (0.0, 1.0)
    assert value(text, "nova_model_disk_size_bytes") > 0
    assert value(text, 'nova_watchdog_restarts_total{target="gateway"}') == 2
    assert value(text, 'nova_watchdog_consecutive_failures{target="gateway"}') == 1
