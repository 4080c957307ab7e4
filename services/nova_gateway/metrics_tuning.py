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

What is left of the success event is :func:`fast_success_event`: LiteLLM builds a 30-field
label object and a label context for every request before setting the handful of series we
export; measured on the test host (``time.thread_time`` around each PrometheusLogger hook,
16 clients) the event cost 383 us of CPU per request of the ~435 us all its hooks cost. When
every other metric the event could set is disabled and every label asked for has a source in
:data:`LABEL_SOURCES`, the fast path sets the same series with LiteLLM's own metric objects
(same names, labels and buckets); otherwise LiteLLM's event runs. The test feeds one request
through both paths and asserts the same series moved by the same amounts.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from datetime import datetime
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


# The series the fast path sets: attribute -> the metric name its labels are configured under.
FAST_METRICS: dict[str, str] = {
    "litellm_proxy_total_requests_metric": "litellm_proxy_total_requests_metric",
    "litellm_tokens_metric": "litellm_total_tokens_metric",
    "litellm_input_tokens_metric": "litellm_input_tokens_metric",
    "litellm_output_tokens_metric": "litellm_output_tokens_metric",
    "litellm_llm_api_time_to_first_token_metric": "litellm_llm_api_time_to_first_token_metric",
    "litellm_llm_api_latency_metric": "litellm_llm_api_latency_metric",
    "litellm_request_total_latency_metric": "litellm_request_total_latency_metric",
}

# Everything else the success event can set: all of it must be disabled for the fast path.
OTHER_SUCCESS_METRICS: tuple[str, ...] = tuple(
    sorted(
        {name for metrics in STEPS.values() for name in metrics}
        | {
            "litellm_input_audio_tokens_metric",
            "litellm_input_cache_creation_tokens_metric",
            "litellm_input_cached_tokens_metric",
            "litellm_output_audio_tokens_metric",
            "litellm_output_reasoning_tokens_metric",
            "litellm_request_queue_time_metric",
        }
    )
)

Sources = Callable[[dict[str, Any], dict[str, Any]], object]

# Label -> its value from (kwargs, standard logging payload), as LiteLLM's event fills it for
# a successful request. A label not here (end_user, team, tags, ...) keeps LiteLLM's event.
LABEL_SOURCES: dict[str, Sources] = {
    "user": lambda kwargs, payload: payload["metadata"]["user_api_key_user_id"],
    "requested_model": lambda kwargs, payload: payload["model_group"],
    "model": lambda kwargs, payload: kwargs.get("model", ""),
    "api_provider": lambda kwargs, payload: payload["custom_llm_provider"],
    "status_code": lambda kwargs, payload: "200",
    "route": lambda kwargs, payload: payload["metadata"].get("user_api_key_request_route"),
}

_PLAN = "_nova_fast_success_plan"
_CHILDREN = "_nova_fast_success_children"


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


def _fast_plan(logger: Any) -> dict[str, tuple[str, ...]] | None:
    """Enabled fast metric (attribute) -> its label names, or None when LiteLLM's own event
    must run. Decided once per logger: LiteLLM builds its metrics when the proxy starts."""
    plan = logger.__dict__.get(_PLAN, False)
    if plan is not False:
        return plan
    from litellm.types.integrations.prometheus import NoOpMetric

    plan = {}
    if getattr(logger, "_emit_input_sequence_length_label", False) or not _all_noop(
        logger, OTHER_SUCCESS_METRICS
    ):
        plan = None
    else:
        for attribute, metric_name in FAST_METRICS.items():
            if isinstance(getattr(logger, attribute, None), NoOpMetric):
                continue
            labels = tuple(logger.get_labels_for_metric(metric_name=metric_name))
            if not set(labels) <= LABEL_SOURCES.keys():
                plan = None
                break
            plan[attribute] = labels
    log.info("Prometheus success event: %s", "LiteLLM's" if plan is None else "fast path")
    logger.__dict__[_PLAN] = plan
    return plan


def _fast_success_event(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def fast_success_event(
        self: Any, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> Any:
        plan = _fast_plan(self)
        payload = kwargs.get("standard_logging_object")
        if plan is None or not isinstance(payload, dict):
            return await original(self, kwargs, response_obj, start_time, end_time)
        if self._should_skip_metrics_for_invalid_key(
            kwargs=kwargs, standard_logging_payload=payload
        ):
            return None
        from litellm.types.integrations.prometheus import sanitize_prometheus_label_value

        values = {
            name: sanitize_prometheus_label_value(source(kwargs, payload))
            for name, source in LABEL_SOURCES.items()
        }
        children = self.__dict__.setdefault(_CHILDREN, {})

        def child(attribute: str) -> Any:
            key = (attribute, *(values[name] for name in plan[attribute]))
            found = children.get(key)
            if found is None:  # prometheus_client keeps the same child per label set
                found = children[key] = getattr(self, attribute).labels(*key[1:])
            return found

        def count(attribute: str, amount: float) -> None:
            if attribute in plan:
                child(attribute).inc(amount)

        def observe(attribute: str, seconds: float | None) -> None:
            if attribute in plan and seconds is not None:
                child(attribute).observe(seconds)

        seconds = self._safe_duration_seconds  # LiteLLM's own: None unless both are datetimes
        count("litellm_tokens_metric", float(payload["total_tokens"]))
        count("litellm_input_tokens_metric", float(payload["prompt_tokens"]))
        count("litellm_output_tokens_metric", float(payload["completion_tokens"]))
        end = kwargs.get("end_time") or datetime.now()
        api_start = kwargs.get("api_call_start_time")
        if kwargs.get("stream", False) is True:  # LiteLLM's rule: streams only
            first_token = seconds(api_start, kwargs.get("completion_start_time"))
            observe("litellm_llm_api_time_to_first_token_metric", first_token)
        observe("litellm_llm_api_latency_metric", seconds(api_start, end))
        total = seconds(kwargs.get("start_time"), end)
        metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        queued = metadata.get("queue_time_seconds")
        if total is not None and queued is not None and queued >= 0:
            total += queued  # LiteLLM's total includes the wait before processing
        observe("litellm_request_total_latency_metric", total)
        count("litellm_proxy_total_requests_metric", 1.0)
        return None

    fast_success_event.__nova_tuned__ = True  # type: ignore[attr-defined]
    return fast_success_event


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
    event = PrometheusLogger.async_log_success_event
    if not getattr(event, "__nova_tuned__", False):
        PrometheusLogger.async_log_success_event = _fast_success_event(event)
