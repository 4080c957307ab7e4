"""What the gateway-side code reads from nova-litellm.service's environment (set by the litellm
role's unit template)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from nova_common.credentials import credential_path, llama_api_key_path, read_secret
from nova_common.local_models import local_models


@dataclass(frozen=True)
class GatewaySettings:
    identity_path: Path
    settings_url: str
    local_model: str
    # Every local model (NOVA_LOCAL_MODELS), the default first.
    local_models: tuple[str, ...]
    usage_flush_s: float
    # Prometheus' scrape token (LoadCredential=metrics-token), read once: auth compares every
    # request's key with it, and a credential does not change while the process runs.
    metrics_token: str | None
    # How long a request for the local model waits for llama-server to come back (its unit's
    # RestartSec plus the model's load), and the Retry-After of the 503 past it
    # (backend_restarts.py).
    backend_wait_s: float
    retry_after_s: int
    # llama-server's key (LoadCredential=llama-api-key): /props, for the local model's limit.
    llama_api_key: str | None

    def master_key(self) -> str | None:
        return os.environ.get("LITELLM_MASTER_KEY") or None


@lru_cache(maxsize=1)
def settings() -> GatewaySettings:
    return GatewaySettings(
        identity_path=Path(
            os.environ.get("NOVA_GATEWAY_IDENTITY", "/var/lib/nova-gateway-identity/identity.json")
        ),
        settings_url=os.environ.get("NOVA_SETTINGS_URL", "http://127.0.0.1:8000").rstrip("/"),
        local_model=os.environ.get("NOVA_LOCAL_MODEL", ""),
        local_models=local_models(
            os.environ.get("NOVA_LOCAL_MODEL"), os.environ.get("NOVA_LOCAL_MODELS", "").split(",")
        ),
        usage_flush_s=float(os.environ.get("NOVA_USAGE_FLUSH_S", "1.0")),
        metrics_token=read_secret(_metrics_token_file()),
        backend_wait_s=float(os.environ.get("NOVA_BACKEND_WAIT_S", "30")),
        retry_after_s=int(os.environ.get("NOVA_BACKEND_RETRY_AFTER_S", "10")),
        llama_api_key=read_secret(llama_api_key_path()),
    )


def _metrics_token_file() -> Path | None:
    explicit = os.environ.get("NOVA_METRICS_TOKEN_FILE", "").strip()
    return Path(explicit) if explicit else credential_path("metrics-token")
