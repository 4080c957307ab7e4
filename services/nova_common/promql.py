"""The gateway's series as PromQL, for everything that reads them back from Prometheus (the
settings page's plots, nova-diagnose). The alert rules (role nova_monitoring) say the same in
their own template: a change here belongs there too.

A gateway request is a call of a model route (LiteLLM also counts the scrapes of its /metrics);
an error is a server-side failure (5xx: a backend failed, or every fallback did); a refusal
(4xx: a wrong key, a budget) is the client's.
"""

from __future__ import annotations

REQUEST_COUNTER = "litellm_proxy_total_requests_metric_total"
FAILURE_COUNTER = "litellm_proxy_failed_requests_metric_total"
COMPLETION_COUNTER = "litellm_output_tokens_metric_total"
TTFT_BUCKETS = "litellm_llm_api_time_to_first_token_metric_bucket"
MODEL_ROUTES = 'route!="/metrics"'
WINDOW = "5m"

REQUESTS = f"{REQUEST_COUNTER}{{{MODEL_ROUTES}}}"
ERRORS = f'{FAILURE_COUNTER}{{exception_status=~"5.."}}'
REFUSED = f'{FAILURE_COUNTER}{{exception_status=~"4..",{MODEL_ROUTES}}}'


def per_second(selector: str, by: str | None = None) -> str:
    """The selector's rate over WINDOW, summed (by the ``by`` labels when given)."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({selector}[{WINDOW}]))"


def ttft_quantile(q: float) -> str:
    """The gateway's time to first token at quantile ``q`` over WINDOW, in seconds."""
    return f"histogram_quantile({q}, sum by (le) (rate({TTFT_BUCKETS}[{WINDOW}])))"
