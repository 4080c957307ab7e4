"""The probes: real requests with a short timeout. A SIGSTOPped or wedged server accepts the
connection (the kernel does) but never answers, so the timeout catches it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from nova_common.credentials import bearer
from nova_common.probe import probe

_METRIC = re.compile(
    r"^llamacpp:(requests_processing|tokens_predicted_total|prompt_tokens_total)\s+(\S+)", re.M
)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    busy: bool = False  # no answer, but the server is demonstrably working on other requests
    progress: float | None = None  # llama-server's token counters, to compare with the last run


def _request(method: str, url: str, timeout: float, **kwargs: Any) -> httpx.Response | str:
    """The answer, or in words why none came."""
    outcome = probe(method, url, timeout, **kwargs)
    if outcome.response is not None:
        return outcome.response
    if outcome.timed_out:
        return outcome.no_answer
    return f"{method} {url}: {outcome.error}"


def _outcome(response: httpx.Response | str, what: str) -> ProbeResult:
    if isinstance(response, str):
        return ProbeResult(False, f"{what}: {response}")
    if not response.is_success:
        return ProbeResult(False, f"{what}: HTTP {response.status_code}")
    return ProbeResult(True, f"{what}: HTTP {response.status_code}")


def llama_metrics(base: str, timeout: float, key: str | None) -> tuple[bool, float] | None:
    """(requests in flight?, tokens processed so far), or None when /metrics does not answer."""
    response = _request("GET", f"{base}/metrics", timeout, headers=bearer(key))
    if isinstance(response, str) or not response.is_success:
        return None
    values = {name: float(value) for name, value in _METRIC.findall(response.text)}
    processing = values.get("requests_processing", 0.0) > 0
    return processing, values.get("tokens_predicted_total", 0.0) + values.get(
        "prompt_tokens_total", 0.0
    )


def probe_llama(
    base: str, timeout: float, key: str | None, last_progress: float | None
) -> ProbeResult:
    """POST /completion for one token. When that times out, llama-server may only be busy (every
    slot taken by long generations): its /metrics is answered by the same main loop, so an
    answer there with requests in flight and token counters moving since the last run means
    busy, not stuck."""
    response = _request(
        "POST",
        f"{base}/completion",
        timeout,
        headers=bearer(key),
        json={"prompt": "ok", "n_predict": 1, "cache_prompt": False},
    )
    result = _outcome(response, "POST /completion")
    if result.ok or not isinstance(response, str):
        return result
    metrics = llama_metrics(base, timeout, key)
    if metrics is None:
        return result
    processing, progress = metrics
    if processing and (last_progress is None or progress > last_progress):
        return ProbeResult(
            False, f"{result.detail}; busy (requests in flight, tokens moving)", True, progress
        )
    return ProbeResult(False, f"{result.detail}; /metrics answers but no progress", False, progress)


def probe_gateway(base: str, timeout: float, key: str | None, model: str | None) -> ProbeResult:
    """GET /health/liveliness; with a key and a model also a 1-token chat completion."""
    result = _outcome(
        _request("GET", f"{base}/health/liveliness", timeout), "GET /health/liveliness"
    )
    if not result.ok or key is None or model is None:
        return result
    response = _request(
        "POST",
        f"{base}/v1/chat/completions",
        timeout,
        headers=bearer(key),
        json={"model": model, "messages": [{"role": "user", "content": "ok"}], "max_tokens": 1},
    )
    return _outcome(response, f"chat with {model}")


def probe_get(base: str, path: str, timeout: float) -> ProbeResult:
    return _outcome(_request("GET", f"{base}{path}", timeout), f"GET {path}")
