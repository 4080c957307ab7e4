"""metrics_cost against the LiteLLM the gateway runs: the time spent in the Prometheus
callback's hooks and scrapes reaches nova_gateway_metrics_cpu_seconds_total, a hook's
suspension is not counted, and the hooks still do their work.

Needs LiteLLM: scripts/test runs it in the gateway's venv (.venv-gateway).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
prometheus = pytest.importorskip("litellm.integrations.prometheus")

from litellm.integrations import prometheus_metrics_endpoint  # noqa: E402
from prometheus_client import REGISTRY, CollectorRegistry, Counter  # noqa: E402

from nova_gateway import metrics_cost, metrics_tuning  # noqa: E402
from tests.nova_gateway.conftest import prometheus_event  # noqa: E402

Logger = prometheus.PrometheusLogger


def _counted(part: str) -> float:
    metrics_cost.flush()
    value = REGISTRY.get_sample_value("nova_gateway_metrics_cpu_seconds_total", {"part": part})
    return value or 0.0


def _install() -> None:
    metrics_tuning.install()
    metrics_cost.install()
    metrics_cost.install()  # idempotent


def test_every_hook_prometheus_overrides_is_metered() -> None:
    from litellm.integrations.custom_logger import CustomLogger

    _install()
    hooks = {
        name
        for name, value in vars(Logger).items()
        if callable(value) and hasattr(CustomLogger, name) and name != "__init__"
    }
    assert hooks == set(metrics_cost.METERED_HOOKS)
    for name in hooks:
        method = getattr(Logger, name)
        assert method.__nova_metered__
        assert not getattr(method.__wrapped__, "__nova_metered__", False), "wrapped twice"


def test_a_hooks_running_time_is_counted_and_its_waits_are_not() -> None:
    async def hook(spin_s: float, wait_s: float) -> str:
        # Work on the event loop for spin_s of this thread's CPU time (what the meter counts):
        # spinning by the wall clock on a busy machine gets less CPU than that (CI: 0.0496 s).
        end = time.thread_time() + spin_s
        while time.thread_time() < end:
            pass
        await asyncio.sleep(wait_s)  # suspended: other requests run meanwhile
        return "done"

    metered = metrics_cost._metered(hook)
    before = _counted("hooks")
    assert asyncio.run(metered(0.05, 0.3)) == "done"
    counted = _counted("hooks") - before
    assert 0.05 <= counted < 0.15


def test_a_hook_off_the_cpu_is_not_counted() -> None:
    """Time a hook's thread spends waiting (here blocked; under load: for the GIL, or
    preempted) is not what the metrics cost."""

    async def hook() -> None:
        time.sleep(0.2)

    before = _counted("hooks")
    asyncio.run(metrics_cost._metered(hook)())
    assert _counted("hooks") - before < 0.05


def test_errors_and_cancellation_pass_through_the_meter() -> None:
    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("from the hook")

    with pytest.raises(ValueError, match="from the hook"):
        asyncio.run(metrics_cost._metered(failing)())

    async def cancelled() -> bool:
        task = asyncio.ensure_future(metrics_cost._metered(asyncio.sleep)(10))
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(cancelled())


def test_scrapes_are_counted() -> None:
    _install()
    registry = CollectorRegistry()
    Counter("nova_test_requests", "a series to render", registry=registry).inc()
    request = prometheus_metrics_endpoint.parse_scrape_request("text/plain", "", ())
    before = _counted("scrapes")
    for _ in range(50):
        body = prometheus_metrics_endpoint.render_scrape(registry, request)
    assert b"nova_test_requests_total 1.0" in body
    assert _counted("scrapes") > before


def test_hook_time_rises_with_each_success_event(prometheus_logger: Any) -> None:
    """The real logger's success event (the fast path) through the meter."""
    _install()
    before = _counted("hooks")
    for _ in range(20):
        event = prometheus_event()
        asyncio.run(Logger.async_log_success_event(prometheus_logger, event, None, None, None))
    assert _counted("hooks") > before
