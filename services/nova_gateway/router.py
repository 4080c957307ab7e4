"""The LiteLLM proxy's router, once the proxy has loaded its config (None before)."""

from __future__ import annotations

from typing import Any


def proxy_router() -> Any:
    from litellm.proxy.proxy_server import llm_router  # set once the config is loaded

    return llm_router


def local_api_bases() -> tuple[str, ...]:
    """The api_base of every deployment marked ``model_info.local`` (llama-server)."""
    router = proxy_router()
    bases = []
    for deployment in router.model_list if router is not None else []:
        if (deployment.get("model_info") or {}).get("local"):
            base = str((deployment.get("litellm_params") or {}).get("api_base") or "")
            if base:
                bases.append(base.rstrip("/"))
    return tuple(bases)


def has_fallbacks(model_group: str) -> bool:
    """Whether the router may hand a failed request for this group to another group."""
    router = proxy_router()
    for entry in (getattr(router, "fallbacks", None) or []) if router is not None else []:
        if isinstance(entry, dict) and entry.get(model_group):
            return True
    return False
