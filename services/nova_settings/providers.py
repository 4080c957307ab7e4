"""Checking a provider API key against the provider's real API.

The key travels in a header (``x-goog-api-key`` / ``x-api-key``), never in the URL. The result
is one of three cases: ``valid`` (2xx), ``rejected`` (the provider said 400/401/403) or
``unreachable`` (connection error, timeout, 5xx or any other answer that says nothing about
the key, e.g. 429).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .core.config import Config, Provider
from .schemas import KeyStatus

_MESSAGE_LIMIT = 200


@dataclass(frozen=True)
class KeyCheck:
    status: KeyStatus
    detail: str
    timed_out: bool = False


def _request_for(config: Config, provider: Provider, key: str) -> tuple[str, dict[str, str]]:
    if provider == "google":
        return f"{config.google_api_base}/models", {"x-goog-api-key": key}
    return f"{config.langsmith_api_base}/api/v1/sessions?limit=1", {"x-api-key": key}


def _provider_message(response: httpx.Response, key: str) -> str:
    """The provider's own error message (Google: error.message; LangSmith: detail), scrubbed."""
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(body.get("detail"), str):
            message = body["detail"]
    message = message.replace(key, "[key]").replace("\n", " ").strip()
    return message[:_MESSAGE_LIMIT]


async def check_key(
    client: httpx.AsyncClient, config: Config, provider: Provider, key: str
) -> KeyCheck:
    url, headers = _request_for(config, provider, key)
    try:
        response = await client.get(
            url,
            headers={**headers, "accept": "application/json"},
            timeout=config.provider_timeout_s,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        return KeyCheck(
            "unreachable",
            f"{provider} API did not answer within {config.provider_timeout_s:g} s",
            timed_out=True,
        )
    except httpx.HTTPError as exc:
        return KeyCheck("unreachable", f"{provider} API unreachable: {type(exc).__name__}")
    code = response.status_code
    if 200 <= code < 300:
        return KeyCheck("valid", f"{provider} API accepted the key")
    if code in (400, 401, 403):
        message = _provider_message(response, key)
        suffix = f": {message}" if message else ""
        return KeyCheck("rejected", f"{provider} API rejected the key (HTTP {code}){suffix}")
    return KeyCheck(
        "unreachable", f"{provider} API answered HTTP {code}; the key could not be checked"
    )
