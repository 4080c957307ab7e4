"""What the gateway-side code reads from nova-litellm.service's environment (set by the litellm
role's unit template)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class GatewaySettings:
    identity_path: Path
    settings_url: str
    local_model: str
    usage_flush_s: float

    metrics_token_file: Path | None

    def master_key(self) -> str | None:
        return os.environ.get("LITELLM_MASTER_KEY") or None

    def metrics_token(self) -> str | None:
        """Prometheus' scrape token (LoadCredential=metrics-token), read fresh."""
        if self.metrics_token_file is None:
            return None
        try:
            return self.metrics_token_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


@lru_cache(maxsize=1)
def settings() -> GatewaySettings:
    return GatewaySettings(
        identity_path=Path(
            os.environ.get("NOVA_GATEWAY_IDENTITY", "/var/lib/nova-gateway-identity/identity.json")
        ),
        settings_url=os.environ.get("NOVA_SETTINGS_URL", "http://127.0.0.1:8000").rstrip("/"),
        local_model=os.environ.get("NOVA_LOCAL_MODEL", ""),
        usage_flush_s=float(os.environ.get("NOVA_USAGE_FLUSH_S", "1.0")),
        metrics_token_file=_metrics_token_file(),
    )


def _metrics_token_file() -> Path | None:
    explicit = os.environ.get("NOVA_METRICS_TOKEN_FILE", "").strip()
    if explicit:
        return Path(explicit)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY", "").strip()
    return Path(credentials) / "metrics-token" if credentials else None
