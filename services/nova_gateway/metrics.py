"""The gateway's Prometheus series: LiteLLM's own, handed their events by our hooks.

The gateway config turns them on by naming the series to export
(``litellm_settings.prometheus_metrics_config``); ``require_auth_for_metrics_endpoint`` keeps
/metrics behind LiteLLM's auth middleware (our metrics token: auth.py). The series are
LiteLLM's ``PrometheusLogger``'s (same names, labels and buckets, and metrics_tuning's fast
path), but LiteLLM's ``"prometheus"`` callback is not listed: LiteLLM resolves and dispatches
every listed callback at several points of every request, and one callback is enough. Our
callback (hooks.py) hands each event on to the logger built here, and /metrics is mounted here.
What the metrics cost in all: ``scripts/bench-gateway --metrics-cost``.

The config is read after LiteLLM imports the hooks, so both are decided at first use: the
logger at the first event or scrape, /metrics answers 404 when the config names no series.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import litellm

log = logging.getLogger("nova_gateway.metrics")

MOUNT = "/metrics"
NOT_ENABLED = b"metrics are off: the gateway config names no series (prometheus_metrics_config)"

_logger: Any = None


def enabled() -> bool:
    return bool(getattr(litellm, "prometheus_metrics_config", None))


def logger() -> Any | None:
    """This process's PrometheusLogger, or None while the config names no series."""
    global _logger
    if _logger is None and enabled():
        try:
            from litellm.integrations.prometheus import PrometheusLogger
        except ImportError:  # no prometheus_client: LiteLLM's proxy extra ships it
            log.warning("prometheus_client is missing: the gateway exports no metrics")
            return None
        _logger = PrometheusLogger()
        log.info("Prometheus series on: %d groups", len(litellm.prometheus_metrics_config or []))
    return _logger


async def forward(hook: str, *args: Any, **kwargs: Any) -> None:
    """Hand one event to the logger's hook of the same name; never fails the request (as
    LiteLLM's own dispatch, which logs a callback's error and goes on)."""
    target = logger()
    if target is None:
        return
    try:
        await getattr(target, hook)(*args, **kwargs)
    except Exception:
        log.exception("Prometheus %s failed; the request is not affected", hook)


def _registry() -> Any:
    """The registry LiteLLM's own /metrics serves: every worker's samples when the unit sets
    PROMETHEUS_MULTIPROC_DIR (as PrometheusLogger._mount_metrics_endpoint chooses)."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


class MetricsApp:
    """/metrics: LiteLLM's scrape app (renders off the event loop), built at the first scrape
    of a gateway whose config names series; 404 otherwise."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            if logger() is None:
                headers = [(b"content-type", b"text/plain; charset=utf-8")]
                await send({"type": "http.response.start", "status": 404, "headers": headers})
                await send({"type": "http.response.body", "body": NOT_ENABLED})
                return
            from litellm.integrations.prometheus_metrics_endpoint import make_metrics_asgi_app

            self._app = make_metrics_asgi_app(_registry())
        await self._app(scope, receive, send)


def mount(app: Any) -> None:
    """Idempotent: /metrics on the proxy's app (LiteLLM imports the hooks once per worker)."""
    if not any(getattr(route, "path", None) == MOUNT for route in app.routes):
        app.mount(MOUNT, MetricsApp())
