"""metrics against the LiteLLM the gateway runs: our one callback hands every event LiteLLM's
Prometheus callback would get to its logger, which moves the series; /metrics serves them,
and answers 404 while the config names no series; a failing metrics hook never fails the
request.

Needs LiteLLM: scripts/test runs it in the gateway's venv (.venv-gateway).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import logging
import os
import textwrap
from typing import Any

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
prometheus = pytest.importorskip("litellm.integrations.prometheus")

import litellm  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from nova_gateway import metrics, metrics_tuning  # noqa: E402
from tests.nova_gateway.conftest import prometheus_event  # noqa: E402

# PrometheusLogger's one hook that does nothing (LiteLLM counts requests in the success event).
NO_OP_HOOKS = {"async_post_call_success_hook"}


def _requests(user: str) -> float:
    value = REGISTRY.get_sample_value(
        "litellm_proxy_total_requests_metric_total",
        {
            "user": user,
            "requested_model": "SmolLM2-135M-Instruct",
            "status_code": "200",
            "route": "/v1/chat/completions",
        },
    )
    return value or 0.0


def _get(app: Starlette, path: str) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.get(path, follow_redirects=True)

    return asyncio.run(call())


@pytest.fixture
def metrics_on(prometheus_logger: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The gateway as deployed: the config names series, this process's logger built."""
    metrics_tuning.install()
    monkeypatch.setattr(metrics, "_logger", prometheus_logger)
    return prometheus_logger


@pytest.fixture
def metrics_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litellm, "prometheus_metrics_config", None)
    monkeypatch.setattr(metrics, "_logger", None)


def test_our_callback_hands_on_every_hook_prometheus_has() -> None:
    """A LiteLLM upgrade that gives PrometheusLogger another hook fails here until hooks.py
    forwards it (the series would silently stop moving)."""
    from nova_gateway.hooks import NovaProxyHooks

    overridden = {
        name
        for name, value in vars(prometheus.PrometheusLogger).items()
        if callable(value) and hasattr(CustomLogger, name) and name != "__init__"
    }
    ours = {name for name in vars(NovaProxyHooks) if hasattr(CustomLogger, name)}
    assert overridden - NO_OP_HOOKS <= ours, sorted(overridden - NO_OP_HOOKS - ours)
    for name in NO_OP_HOOKS:  # still nothing to forward: a docstring and no statement
        method = inspect.unwrap(prometheus.PrometheusLogger.__dict__[name])
        body = ast.parse(textwrap.dedent(inspect.getsource(method))).body[0].body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{name} now does something"


def test_a_success_event_moves_the_series(metrics_on: Any) -> None:
    before = _requests("alice")
    asyncio.run(metrics.forward("async_log_success_event", prometheus_event(), None, None, None))
    assert _requests("alice") == before + 1


def test_metrics_serves_the_series(metrics_on: Any) -> None:
    event = prometheus_event(user="bob")
    asyncio.run(metrics.forward("async_log_success_event", event, None, None, None))
    app = Starlette()
    metrics.mount(app)
    metrics.mount(app)  # LiteLLM imports the hooks once per worker: one mount
    assert [route.path for route in app.routes] == ["/metrics"]
    answer = _get(app, "/metrics")
    assert answer.status_code == 200
    assert "litellm_proxy_total_requests_metric_total{" in answer.text
    assert 'user="bob"' in answer.text


def test_no_series_named_no_metrics(metrics_off: None) -> None:
    assert metrics.logger() is None
    asyncio.run(metrics.forward("async_log_success_event", prometheus_event(), None, None, None))
    app = Starlette()
    metrics.mount(app)
    answer = _get(app, "/metrics")
    assert answer.status_code == 404
    assert "prometheus_metrics_config" in answer.text


def test_a_failing_metrics_hook_does_not_fail_the_request(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        async def async_log_failure_event(self, *args: Any) -> None:
            raise RuntimeError("label missing")

    monkeypatch.setattr(metrics, "_logger", Broken())
    with caplog.at_level(logging.ERROR, logger="nova_gateway.metrics"):
        asyncio.run(metrics.forward("async_log_failure_event", {}, None, None, None))
    assert "async_log_failure_event failed" in caplog.text
