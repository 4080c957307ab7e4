"""What LiteLLM's Prometheus callback must not do on our hot path, and why.

The gateway config enables only the series we export (``prometheus_metrics_config``); the rest
become no-op metrics. LiteLLM 1.108.7 still builds the label sets of its rate-limit gauges on
every request before it finds nothing to set, and this gateway has no LiteLLM rate limits
(budgets are ours: nova_gateway/auth.py). Measured with py-spy under 16 clients, that work was
3.6% of a worker's samples, over half of the callback's cost (``scripts/bench-gateway
--metrics-cost`` says what the callback costs in all). :func:`install` skips those two methods
whenever every gauge they would set is a no-op, so a config that enables them gets them back.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("nova_gateway.metrics_tuning")

# Method -> the gauges it sets (PrometheusLogger attributes).
RATE_LIMIT_GAUGES: dict[str, tuple[str, ...]] = {
    "_set_v3_rate_limit_allowed_and_used_metrics": (
        "litellm_api_key_rate_limit_allowed_metric",
        "litellm_api_key_rate_limit_used_metric",
        "litellm_team_rate_limit_allowed_metric",
        "litellm_team_rate_limit_used_metric",
        "litellm_project_model_rate_limit_allowed_metric",
        "litellm_project_model_rate_limit_used_metric",
    ),
    "_set_virtual_key_rate_limit_metrics": (
        "litellm_remaining_api_key_requests_for_model",
        "litellm_remaining_api_key_tokens_for_model",
    ),
}


def _skip_when_disabled(method: Callable[..., Any], gauges: tuple[str, ...]) -> Callable[..., Any]:
    from litellm.types.integrations.prometheus import NoOpMetric

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if all(isinstance(getattr(self, name, None), NoOpMetric) for name in gauges):
            return None
        return method(self, *args, **kwargs)

    wrapper.__nova_tuned__ = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Idempotent; a LiteLLM without these methods is left alone (and said so once)."""
    try:
        from litellm.integrations.prometheus import PrometheusLogger
    except ImportError:  # no prometheus_client: the callback is off anyway
        return
    for name, gauges in RATE_LIMIT_GAUGES.items():
        method = getattr(PrometheusLogger, name, None)
        if method is None:
            log.warning("LiteLLM has no PrometheusLogger.%s: metrics tuning skipped", name)
            continue
        if not getattr(method, "__nova_tuned__", False):
            setattr(PrometheusLogger, name, _skip_when_disabled(method, gauges))
