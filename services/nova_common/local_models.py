"""The host's local models as the gateway and the settings service name them: the default
(NOVA_LOCAL_MODEL) first, then the others NOVA_LOCAL_MODELS lists, each once."""

from __future__ import annotations

from collections.abc import Iterable


def local_models(default: str | None, listed: Iterable[str]) -> tuple[str, ...]:
    names = [default or "", *listed]
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
