"""Which models exist (asked from the gateway) and which are usable right now.

Nothing here holds a list of models: the gateway's ``GET /v1/models`` is the source. A model is

* local (its id is among NOVA_LOCAL_MODELS): with one local model, available while
  llama-server's ``/health`` answers 200, its context from llama-server's ``/props``
  (``default_generation_settings.n_ctx``); with several, what nova-model-residency's
  ``/residency`` says of each (loaded, loadable or unavailable with the reason; quantization,
  file size, trained and served context), asked without loading anything;
* cloud (id starts with ``gemini``, the only cloud models the gateway config offers):
  available while a validated Google key is stored; its context comes from CLOUD_CONTEXTS;
* anything else: listed, but not available (no rule says how to check it).

A model whose context is known nowhere is allowed MAX_TOKENS_FALLBACK tokens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from nova_common.credentials import bearer
from nova_common.probe import probe_async

from .core.config import Config, Provider
from .gateway import keystore
from .schemas import GatewayState, ModelOut, ModelsOut

# Context windows of the cloud models the gateway may route to (tokens), for the models whose
# provider does not report it.
CLOUD_CONTEXTS: dict[str, int] = {
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.5-flash-lite": 1_048_576,
    "gemini-2.5-pro": 1_048_576,
    "gemini-2.0-flash": 1_048_576,
}
MAX_TOKENS_FALLBACK = 8192


@dataclass(frozen=True)
class LlamaState:
    healthy: bool
    detail: str
    n_ctx: int | None = None


@dataclass
class Catalog:
    """The discovery result, indexed by model id."""

    gateway: GatewayState
    models: dict[str, ModelOut] = field(default_factory=dict)

    def report(self) -> ModelsOut:
        return ModelsOut(gateway=self.gateway, models=list(self.models.values()))


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    return type(exc).__name__


async def llama_health(client: httpx.AsyncClient, config: Config) -> LlamaState:
    outcome = await probe_async(
        client, "GET", f"{config.llama_url}/health", config.discovery_timeout_s
    )
    if outcome.exception is not None:
        return LlamaState(False, f"llama-server unreachable: {_describe_error(outcome.exception)}")
    if outcome.status != 200:
        return LlamaState(False, f"llama-server /health answered HTTP {outcome.status}")
    return LlamaState(True, "llama-server /health answered 200")


async def llama_props(client: httpx.AsyncClient, config: Config) -> object:
    """llama-server's ``/props`` (its context, model file, build), parsed. Raises
    httpx.HTTPError or ValueError when it cannot say."""
    response = await client.get(
        f"{config.llama_url}/props",
        headers=bearer(config.llama_api_key()),
        timeout=config.discovery_timeout_s,
    )
    response.raise_for_status()
    return response.json()


async def llama_context(client: httpx.AsyncClient, config: Config) -> int | None:
    try:
        props = await llama_props(client, config)
    except (httpx.HTTPError, ValueError):
        return None
    settings = props.get("default_generation_settings") if isinstance(props, dict) else None
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx > 0:
        return n_ctx
    return None


async def llama_residency(
    client: httpx.AsyncClient, config: Config
) -> dict[str, dict[str, Any]] | str:
    """nova-model-residency's view of each local model, by name; a string says why there is
    none."""
    try:
        response = await client.get(
            f"{config.llama_url}/residency",
            headers=bearer(config.llama_api_key()),
            timeout=config.discovery_timeout_s,
        )
    except httpx.HTTPError as exc:
        return f"llama-server unreachable: {_describe_error(exc)}"
    if response.status_code != 200:
        return f"llama-server /residency answered HTTP {response.status_code}"
    try:
        models = response.json()["models"]
        return {str(m["name"]): m for m in models}
    except (ValueError, KeyError, TypeError):
        return "llama-server /residency answer not understood"


def resident_model(model_id: str, info: dict[str, Any] | None, why_none: str) -> ModelOut:
    """A local model as the residency reports it."""
    if info is None:
        return ModelOut(
            id=model_id, kind="local", provider="llama.cpp", available=False,
            reason=why_none, state="unavailable",
        )  # fmt: skip
    if info.get("state") == "loaded":
        state, reason = "loaded", "loaded"
    elif not info.get("fits", True):
        state = "unavailable"
        reason = (
            f"needs {info.get('footprint_mib')} MiB, more than the memory left beside the "
            "pinned models"
        )
    elif info.get("last_error") and info.get("state") != "loading":
        state, reason = "unavailable", f"its last load failed: {info['last_error']}"
    else:
        state, reason = "loadable", "loaded by the first request that names it"

    quantization = info.get("quantization")

    def number(key: str) -> int | None:
        value = info.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return ModelOut(
        id=model_id,
        kind="local",
        provider="llama.cpp",
        available=state != "unavailable",
        reason=reason,
        context=number("ctx_per_request"),
        state=state,  # type: ignore[arg-type]
        quantization=quantization if isinstance(quantization, str) else None,
        file_size=number("file_size"),
        trained_context=number("context_length"),
    )


async def gateway_model_ids(client: httpx.AsyncClient, config: Config) -> list[str]:
    """Model ids the gateway serves. Raises httpx.HTTPError/ValueError when it cannot say."""
    headers: dict[str, str] = {}
    master_key = config.gateway_master_key()
    if master_key:
        headers["authorization"] = f"Bearer {master_key}"
    response = await client.get(
        f"{config.gateway_url}/v1/models", headers=headers, timeout=config.discovery_timeout_s
    )
    response.raise_for_status()
    body: Any = response.json()
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ValueError("gateway /v1/models answer has no data list")
    ids: list[str] = []
    for entry in data:
        model_id = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(model_id, str) and model_id and model_id not in ids:
            ids.append(model_id)
    return ids


def cloud_provider(model_id: str) -> Provider | None:
    return "google" if model_id.startswith("gemini") else None


def context_limit(catalog: Catalog, model: str) -> int:
    """The most tokens ``model`` may be asked for."""
    info = catalog.models.get(model)
    if info is not None and info.context:
        return info.context
    return CLOUD_CONTEXTS.get(model, MAX_TOKENS_FALLBACK)


async def single_llama(client: httpx.AsyncClient, config: Config) -> tuple[LlamaState, int | None]:
    """One local model: llama-server's ``/health`` and its context from ``/props``."""
    return await asyncio.gather(llama_health(client, config), llama_context(client, config))


def local_model(
    model_id: str, local: tuple[LlamaState, int | None] | dict[str, dict[str, Any]] | str
) -> ModelOut:
    """A local model from what single_llama or llama_residency found."""
    if isinstance(local, str):
        return resident_model(model_id, None, local)
    if isinstance(local, dict):
        return resident_model(model_id, local.get(model_id), "llama-server does not serve it")
    llama, n_ctx = local
    return ModelOut(
        id=model_id,
        kind="local",
        provider="llama.cpp",
        available=llama.healthy,
        reason=llama.detail,
        context=n_ctx,
        state="loaded" if llama.healthy else "unavailable",
    )


async def discover(client: httpx.AsyncClient, config: Config) -> Catalog:
    ids_task = asyncio.ensure_future(gateway_model_ids(client, config))
    # Several models: the residency's /residency alone (/props would load the default one).
    local_task = asyncio.ensure_future(
        llama_residency(client, config)
        if len(config.local_models) > 1
        else single_llama(client, config)
    )
    try:
        ids = await ids_task
    except (httpx.HTTPError, ValueError) as exc:
        local_task.cancel()
        if isinstance(exc, httpx.HTTPStatusError):
            error = f"gateway /v1/models answered HTTP {exc.response.status_code}"
        elif isinstance(exc, ValueError):
            error = f"gateway /v1/models answer not understood: {exc}"
        else:
            error = f"gateway unreachable: {_describe_error(exc)}"
        return Catalog(gateway=GatewayState(reachable=False, error=error))
    local = await local_task

    catalog = Catalog(gateway=GatewayState(reachable=True))
    for model_id in ids:
        if model_id in config.local_models:
            model = local_model(model_id, local)
        elif (provider := cloud_provider(model_id)) is not None:
            stored = keystore.has_key(config.secrets_dir, provider)
            model = ModelOut(
                id=model_id,
                kind="cloud",
                provider=provider,
                available=stored,
                reason=(
                    f"a validated {provider} API key is stored"
                    if stored
                    else f"no validated {provider} API key is stored"
                ),
                context=CLOUD_CONTEXTS.get(model_id),
            )
        else:
            model = ModelOut(
                id=model_id,
                kind="other",
                provider=None,
                available=False,
                reason="neither the local model nor a known cloud provider's model",
            )
        catalog.models[model_id] = model
    return catalog
