"""What LiteLLM's Prometheus callback must not do on our hot path, and why.

The gateway config enables only the series we export (``prometheus_metrics_config``); the rest
become no-op metrics. LiteLLM 1.108.7 still runs every step of its success callback (building
label sets, reading budgets and rate-limit headers, looking up the router) before it finds
nothing to set. Measured with py-spy under 16 clients, the rate-limit gauges alone were 3.6%
of a worker's samples, over half of the callback's cost (``scripts/bench-gateway
--metrics-cost`` says what the callback costs in all). :func:`install` skips each step of
:data:`STEPS` whenever every metric it would set is a no-op, so a config that enables one of
them gets its step back. ``tests/nova_gateway/test_metrics_tuning.py`` reads LiteLLM's source
and fails when a step sets a metric this table does not name (a LiteLLM upgrade).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("nova_gateway.metrics_tuning")

# PrometheusLogger method -> every metric (attribute) it sets, directly or through helpers.
STEPS: dict[str, tuple[str, ...]] = {
    "_increment_top_level_request_and_spend_metrics": (
        "litellm_requests_metric",
        "litellm_spend_metric",
    ),
    "_increment_zero_cost_requests_metric": ("litellm_zero_cost_requests_total",),
    "_increment_remaining_budget_metrics": (
        "litellm_api_key_budget_remaining_hours_metric",
        "litellm_api_key_max_budget_metric",
        "litellm_customer_budget_remaining_hours_metric",
        "litellm_customer_max_budget_metric",
        "litellm_org_budget_remaining_hours_metric",
        "litellm_org_max_budget_metric",
        "litellm_remaining_api_key_budget_metric",
        "litellm_remaining_customer_budget_metric",
        "litellm_remaining_org_budget_metric",
        "litellm_remaining_team_budget_metric",
        "litellm_remaining_user_budget_metric",
        "litellm_team_budget_remaining_hours_metric",
        "litellm_team_max_budget_metric",
        "litellm_user_budget_remaining_hours_metric",
        "litellm_user_max_budget_metric",
    ),
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
    "set_llm_deployment_success_metrics": (
        "litellm_deployment_latency_per_output_token",
        "litellm_deployment_rpm_limit",
        "litellm_deployment_state",
        "litellm_deployment_success_responses",
        "litellm_deployment_total_requests",
        "litellm_deployment_tpm_limit",
        "litellm_overhead_latency_metric",
        "litellm_overhead_with_guardrails_latency_metric",
        "litellm_remaining_requests_metric",
        "litellm_remaining_tokens_metric",
    ),
    "_async_set_router_remaining_metrics": (
        "litellm_remaining_requests_metric",
        "litellm_remaining_tokens_metric",
    ),
    "_increment_cache_metrics": (
        "litellm_cache_hits_metric",
        "litellm_cache_misses_metric",
        "litellm_cached_tokens_metric",
        "litellm_provider_cache_creation_input_tokens_metric",
        "litellm_provider_cache_read_input_tokens_metric",
    ),
    "_increment_media_generation_metrics": (
        "litellm_images_generated_metric",
        "litellm_video_duration_seconds_metric",
    ),
    "_increment_mcp_tool_call_metrics": (
        "litellm_mcp_tool_call_spend_metric",
        "litellm_mcp_tool_calls_total",
    ),
}


def _all_noop(logger: Any, metrics: tuple[str, ...]) -> bool:
    from litellm.types.integrations.prometheus import NoOpMetric

    return all(isinstance(getattr(logger, name, None), NoOpMetric) for name in metrics)


def _skip_when_disabled(method: Callable[..., Any], metrics: tuple[str, ...]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _all_noop(self, metrics):
                return None
            return await method(self, *args, **kwargs)

        wrapper: Callable[..., Any] = async_wrapper
    else:

        @functools.wraps(method)
        def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _all_noop(self, metrics):
                return None
            return method(self, *args, **kwargs)

        wrapper = sync_wrapper
    wrapper.__nova_tuned__ = True  # type: ignore[attr-defined]
    return wrapper


def install() -> None:
    """Idempotent; a LiteLLM without one of these methods keeps the rest (and says so once)."""
    try:
        from litellm.integrations.prometheus import PrometheusLogger
    except ImportError:  # no prometheus_client: the callback is off anyway
        return
    for name, metrics in STEPS.items():
        method = getattr(PrometheusLogger, name, None)
        if method is None:
            log.warning("LiteLLM has no PrometheusLogger.%s: that step is not tuned", name)
            continue
        if not getattr(method, "__nova_tuned__", False):
            setattr(PrometheusLogger, name, _skip_when_disabled(method, metrics))
