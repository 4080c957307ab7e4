"""LiteLLM custom auth (``general_settings.custom_auth: nova_gateway.auth.user_api_key_auth``
with ``custom_auth_settings: {mode: auto}``).

A key that starts with ``nk-`` is a user's gateway key and is decided here, from the identity
snapshot, with a clear message on refusal. Anything else raises a plain exception, which in
``auto`` mode hands the request to LiteLLM's own auth: the master key (operators) and the
public health routes work as before.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from functools import lru_cache

from fastapi import Request
from litellm.proxy._types import LitellmUserRoles, ProxyException, UserAPIKeyAuth

from nova_common.gateway_identity import KEY_PREFIX, SnapshotError, SnapshotReader, hash_key

from .settings import settings

log = logging.getLogger("nova_gateway.auth")

# What a user's key may call: the model routes. Everything else (LiteLLM's admin API) is the
# master key's.
MODEL_ROUTES = frozenset(
    f"{prefix}{route}"
    for prefix in ("", "/v1")
    for route in ("/chat/completions", "/completions", "/embeddings", "/models")
)
IDENTITY_METADATA = "nova_identity"


class NotAUserKey(Exception):
    """Not ours: LiteLLM's own auth decides (``auto`` mode)."""


@lru_cache(maxsize=1)
def reader() -> SnapshotReader:
    return SnapshotReader(settings().identity_path)


def _refuse(code: int, message: str) -> ProxyException:
    kind = {401: "auth_error", 403: "auth_error", 429: "budget_exceeded"}.get(code, "auth_error")
    return ProxyException(message=message, type=kind, param="api_key", code=code)


def _resets_in(until: str) -> str:
    left = datetime.fromisoformat(until) - datetime.now(UTC)
    minutes = max(1, int(left.total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60} min"


METRICS_ROUTE = "/metrics"


def _metrics_scrape(request: Request, api_key: str) -> UserAPIKeyAuth | None:
    """Prometheus with the metrics token: ``/metrics`` and nothing else (403 elsewhere)."""
    token = settings().metrics_token
    if token is None or not hmac.compare_digest(api_key.encode(), token.encode()):
        return None
    path = request.url.path.rstrip("/")
    if path != METRICS_ROUTE and not path.startswith(METRICS_ROUTE + "/"):
        raise _refuse(403, "The metrics token may read /metrics only.")
    return UserAPIKeyAuth(api_key="metrics", user_id="prometheus", key_alias="metrics scrape")


async def user_api_key_auth(request: Request, api_key: str) -> UserAPIKeyAuth:
    if api_key and (scrape := _metrics_scrape(request, api_key)) is not None:
        return scrape
    if not api_key or not api_key.startswith(KEY_PREFIX):
        raise NotAUserKey
    try:
        ident = reader().lookup(api_key)
    except SnapshotError as exc:
        log.error("%s", exc)
        raise _refuse(503, "the gateway cannot check user keys right now") from None
    if ident is None:
        raise _refuse(
            401,
            "Invalid gateway key: it was revoked or rotated, or never issued. "
            "Create one with POST /api/gateway-key on the settings service.",
        )
    if ident.disabled:
        raise _refuse(401, f"Gateway key refused: user {ident.name!r} is disabled.")
    if request.url.path not in MODEL_ROUTES:
        raise _refuse(403, "A user's gateway key may call only the model routes.")
    if ident.over_budget() and ident.over_budget_until is not None:
        raise _refuse(
            429,
            f"Daily token budget of {ident.daily_token_budget} tokens used up for user "
            f"{ident.name!r}; it resets at {ident.over_budget_until} "
            f"(in {_resets_in(ident.over_budget_until)}).",
        )
    digest = hash_key(api_key)
    return UserAPIKeyAuth(
        api_key=digest,
        token=digest,
        user_id=ident.name,
        key_alias=f"{ident.name} (gateway key)",
        user_role=LitellmUserRoles.INTERNAL_USER,
        metadata={IDENTITY_METADATA: ident.to_json()},
    )
