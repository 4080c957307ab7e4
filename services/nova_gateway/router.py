"""The LiteLLM proxy's router, once the proxy has loaded its config (None before)."""

from __future__ import annotations

from typing import Any


def proxy_router() -> Any:
    from litellm.proxy.proxy_server import llm_router  # set once the config is loaded

    return llm_router


def _local_deployments() -> list[tuple[str, str]]:
    """(model group, api_base) of every deployment marked ``model_info.local`` (a
    llama-server), in config order."""
    router = proxy_router()
    out = []
    for deployment in router.model_list if router is not None else []:
        if (deployment.get("model_info") or {}).get("local"):
            base = str((deployment.get("litellm_params") or {}).get("api_base") or "")
            if base:
                out.append((str(deployment.get("model_name") or ""), base.rstrip("/")))
    return out


def local_group_of(url: str, model: str | None = None) -> tuple[str, tuple[str, ...]] | None:
    """For a request to a local deployment: its model group and the api_base of every local
    deployment of that group (the inference hosts that serve the same model), the one the
    URL goes to first. None for any other URL. Several local models share each host's
    address: ``model`` (the request's) picks the group, else the first at that address."""
    deployments = _local_deployments()
    matching = [(g, b) for g, b in deployments if url.startswith(b + "/") or url == b]
    if not matching:
        return None
    group, base = next(((g, b) for g, b in matching if g == model), matching[0])
    others = tuple(b for g, b in deployments if g == group and b != base)
    return group, (base, *others)


def has_fallbacks(model_group: str) -> bool:
    """Whether the router may hand a failed request for this group to another group."""
    router = proxy_router()
    for entry in (getattr(router, "fallbacks", None) or []) if router is not None else []:
        if isinstance(entry, dict) and entry.get(model_group):
            return True
    return False
