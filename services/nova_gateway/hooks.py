"""LiteLLM proxy hooks (``litellm_settings.callbacks: nova_gateway.hooks.proxy_hooks``).

Before the call (``async_pre_call_hook``), for a request made with a user's gateway key:

* ``model="default"`` becomes the user's saved model; when that model cannot serve now (its
  provider key was removed, the gateway no longer offers it) the host's local model serves
  instead, and ``x-nova-fallback-reason`` says why;
* ``temperature`` and ``max_tokens`` the request leaves out take the user's values (the saved
  max_tokens capped to the model's limit); an explicit ``max_tokens`` above the model's limit
  is refused with 400.

With the master key (no user) ``model="default"`` is refused with 400. After the call every
answer names the model that served it in ``x-nova-model``, and the usage callbacks count the
request (``usage.py``) for the user, or for the master key (user id 0).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import litellm
from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import UserAPIKeyAuth
from litellm.proxy.proxy_server import app as proxy_app

from nova_common.credentials import bearer
from nova_common.gateway_identity import OPERATOR_USER_ID, Identity

from . import backend_restarts, metrics, metrics_cost, metrics_tuning
from .auth import IDENTITY_METADATA, reader
from .router import has_fallbacks, proxy_router
from .settings import settings
from .usage import recorder, send_before_litellm_shuts_down

log = logging.getLogger("nova_gateway.hooks")

DEFAULT_MODEL = "default"
COMPLETION_CALLS = frozenset({"completion", "acompletion", "text_completion", "atext_completion"})
LIMIT_TTL_S = 60.0
NOT_OFFERED = "the gateway does not offer this model now"


def _bad_request(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail={"error": message})


def _header_safe(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1").replace("\n", " ")[:300]


class ModelLimits:
    """The most tokens a request may ask of a model: the local model's context (llama-server's
    ``/props``, the rule the settings service checks saved values by), a cloud model's output
    limit from LiteLLM's model map. Kept ``LIMIT_TTL_S``; None when unknown (not checked)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, int | None]] = {}
        self._client = httpx.AsyncClient(trust_env=False, timeout=2.0)

    async def limit(self, model: str) -> int | None:
        cached = self._cache.get(model)
        if cached is not None and time.monotonic() - cached[0] < LIMIT_TTL_S:
            return cached[1]
        value = await self._lookup(model)
        self._cache[model] = (time.monotonic(), value)
        return value

    async def _lookup(self, model: str) -> int | None:
        router = proxy_router()
        deployments = [d for d in (router.model_list if router else []) if d["model_name"] == model]
        if not deployments:
            return None
        params = deployments[0].get("litellm_params", {})
        if deployments[0].get("model_info", {}).get("local"):
            # One deployment per inference host, all serving the same model: the first that
            # answers tells.
            for deployment in deployments:
                n_ctx = await self._local_context(model, deployment.get("litellm_params", {}))
                if n_ctx is not None:
                    return n_ctx
            return None
        try:
            info = litellm.get_model_info(str(params.get("model", model)))
        except Exception:  # LiteLLM raises a bare Exception for unknown models
            return None
        value = info.get("max_output_tokens") or info.get("max_tokens")
        return int(value) if value else None

    async def _local_context(self, model: str, params: dict[str, Any]) -> int | None:
        base = str(params.get("api_base", "")).removesuffix("/").removesuffix("/v1")
        try:
            headers = bearer(settings().llama_api_key)
            # ?model= picks the model where several share the address (nova-model-residency;
            # the request is about to load it anyway); llama-server alone ignores it.
            props = (
                await self._client.get(f"{base}/props", headers=headers, params={"model": model})
            ).json()
            n_ctx = props["default_generation_settings"]["n_ctx"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None


class NovaProxyHooks(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.limits = ModelLimits()

    # --- before the call ----------------------------------------------------------------------

    def _unavailable(self, model: str) -> str | None:
        reason = reader().unavailable_reason(model)
        if reason is not None:
            return reason
        router = proxy_router()
        if router is not None and model not in router.model_names:
            return NOT_OFFERED
        return None

    async def async_pre_call_hook(
        self, user_api_key_dict: UserAPIKeyAuth, cache: Any, data: dict, call_type: Any
    ) -> dict:
        if call_type not in COMPLETION_CALLS:
            return data
        meta = data.setdefault("metadata", {})
        raw = (user_api_key_dict.metadata or {}).get(IDENTITY_METADATA)
        if raw is None:  # the master key: an operator, no user
            if data.get("model") == DEFAULT_MODEL:
                raise _bad_request(
                    "model 'default' means a user's saved model, and the master key has no "
                    "user: call with a user's gateway key (POST /api/gateway-key) or name a model"
                )
            meta["nova_user_id"] = OPERATOR_USER_ID
            return data
        ident = Identity.from_json(raw)
        meta["nova_user_id"] = ident.user_id
        local = settings().local_model
        if data.get("model") == DEFAULT_MODEL:
            target = ident.model or local
            reason = self._unavailable(target) if target != local else None
            if reason is not None:
                meta["nova_fallback_reason"] = f"saved model {target}: {reason}; served by {local}"
                log.info("user %s: saved model %s unavailable (%s)", ident.name, target, reason)
                target = local
            data["model"] = target
        if data.get("temperature") is None:
            data["temperature"] = ident.temperature
        limit = await self.limits.limit(str(data.get("model")))
        explicit = data.get("max_tokens")
        if explicit is None:
            explicit = data.get("max_completion_tokens")
        if explicit is not None:
            if not isinstance(explicit, int) or isinstance(explicit, bool) or explicit < 1:
                raise _bad_request("max_tokens must be a positive integer")
            if limit is not None and explicit > limit:
                raise _bad_request(
                    f"max_tokens {explicit} exceeds the limit of model {data['model']} ({limit})"
                )
        else:
            data["max_tokens"] = min(ident.max_tokens, limit) if limit else ident.max_tokens
        return data

    # --- the answer's headers -----------------------------------------------------------------

    async def async_post_call_response_headers_hook(
        self,
        data: dict,
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        if response is not None:
            model_id = (litellm_call_info or {}).get("model_id")
            if not model_id:
                model_id = (getattr(response, "_hidden_params", None) or {}).get("model_id")
            router = proxy_router()
            deployment = router.get_deployment(model_id=model_id) if router and model_id else None
            if deployment is not None:
                headers["x-nova-model"] = _header_safe(deployment.model_name)
        reason = (data.get("metadata") or {}).get("nova_fallback_reason")
        if reason:
            headers["x-nova-fallback-reason"] = _header_safe(reason)
        return headers or None

    # --- usage (LiteLLM runs these off the request path) -----------------------------------

    @staticmethod
    def _user_id(kwargs: dict) -> int | None:
        meta = (kwargs.get("litellm_params") or {}).get("metadata") or {}
        user_id = meta.get("nova_user_id")
        return user_id if isinstance(user_id, int) else None

    async def async_log_success_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._count_usage(kwargs)
        await metrics.forward("async_log_success_event", kwargs, response_obj, start_time, end_time)

    def _count_usage(self, kwargs: dict) -> None:
        user_id = self._user_id(kwargs)
        if user_id is None:
            return
        slo = kwargs.get("standard_logging_object") or {}
        model = str(slo.get("model_group") or kwargs.get("model") or "unknown")
        # The local model costs nothing per token (LiteLLM's map may price its name).
        cost = 0.0 if model in settings().local_models else float(slo.get("response_cost") or 0)
        recorder.add(
            user_id,
            model,
            prompt_tokens=int(slo.get("prompt_tokens") or 0),
            completion_tokens=int(slo.get("completion_tokens") or 0),
            cost=cost,
        )

    # --- the Prometheus series (metrics.py; its success hook is a no-op) -----------------------

    async def async_log_failure_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        await metrics.forward("async_log_failure_event", kwargs, response_obj, start_time, end_time)

    async def log_success_fallback_event(
        self, original_model_group: str, kwargs: dict, original_exception: Exception
    ) -> None:
        await metrics.forward(
            "log_success_fallback_event",
            original_model_group=original_model_group,
            kwargs=kwargs,
            original_exception=original_exception,
        )

    async def log_failure_fallback_event(
        self, original_model_group: str, kwargs: dict, original_exception: Exception
    ) -> None:
        await metrics.forward(
            "log_failure_fallback_event",
            original_model_group=original_model_group,
            kwargs=kwargs,
            original_exception=original_exception,
        )

    # --- failures ---------------------------------------------------------------------------

    async def async_post_call_failure_hook(
        self,
        request_data: dict,
        original_exception: Exception,
        user_api_key_dict: UserAPIKeyAuth,
        traceback_str: str | None = None,
    ) -> HTTPException | None:
        await metrics.forward(
            "async_post_call_failure_hook",
            request_data=request_data,
            original_exception=original_exception,
            user_api_key_dict=user_api_key_dict,
            traceback_str=traceback_str,
        )
        # Failures of the backends (5xx, timeouts, refused connections) count as errors;
        # refusals of bad input (4xx) record nothing.
        status = getattr(original_exception, "status_code", None) or getattr(
            original_exception, "code", None
        )
        try:
            status = int(status) if status is not None else 500
        except (TypeError, ValueError):
            status = 500
        model = str(request_data.get("model") or "unknown")
        user_id = (request_data.get("metadata") or {}).get("nova_user_id")
        if status >= 500 and isinstance(user_id, int):
            recorder.add(user_id, model, error=True)
        return _backend_unavailable(model, status, original_exception)


# LiteLLM's exceptions for a backend that did not answer or failed (its own 5xx classes).
BACKEND_FAILURES = (
    litellm.APIConnectionError,
    litellm.ServiceUnavailableError,
    litellm.InternalServerError,
)


def _backend_unavailable(model: str, status: int, exc: Exception) -> HTTPException | None:
    """A backend did not answer (refused, dropped, still loading past the wait of
    backend_restarts.py) or failed, and so did the fallbacks: 503 with Retry-After and the
    model's name, not LiteLLM's 500 a client cannot tell from a bug. Anything else (our own
    errors included) keeps its status."""
    if status < 500 or not isinstance(exc, BACKEND_FAILURES):
        return None
    local = model in settings().local_models
    if local and not has_fallbacks(model):
        message = backend_restarts.gone_message(model, settings().backend_wait_s)
    else:
        message = (
            f"model {model} is unavailable: its backend "
            f"({'llama-server' if local else 'the provider'}) failed or did not answer, and so "
            f"did its fallbacks. Retry after {settings().retry_after_s} s."
        )
    return HTTPException(
        status_code=503,
        detail={"error": message},
        headers={"Retry-After": str(settings().retry_after_s)},
    )


proxy_hooks = NovaProxyHooks()
metrics.mount(proxy_app)
send_before_litellm_shuts_down()
metrics_tuning.install()
metrics_cost.install()  # after the tuning: times what runs
backend_restarts.install()
