"""Service configuration: the NOVA_* environment of the systemd unit, loaded once per app."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_UNITS = (
    "nova-llama-server.service",
    "nova-litellm.service",
    "nova-settings.service",
    "nova-llm.target",
)

# Context windows of cloud models the gateway may route to (tokens). Overridable with
# NOVA_MODEL_CONTEXTS (a JSON object); a model not listed falls back to max_tokens_fallback.
DEFAULT_MODEL_CONTEXTS: dict[str, int] = {
    "gemini-2.5-flash": 1_048_576,
    "gemini-2.5-flash-lite": 1_048_576,
    "gemini-2.5-pro": 1_048_576,
    "gemini-2.0-flash": 1_048_576,
}

Provider = Literal["google", "langsmith"]
PROVIDERS: tuple[Provider, ...] = ("google", "langsmith")


class Config(BaseModel):
    """Everything the service reads from its environment, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    state_dir: Path = Path("/var/lib/nova-settings")
    local_model: str | None = None
    llama_url: str = "http://127.0.0.1:8080"
    gateway_url: str = "http://127.0.0.1:4000"
    gateway_key_file: Path | None = None
    google_api_base: str = "https://generativelanguage.googleapis.com/v1beta"
    langsmith_api_base: str = "https://api.smith.langchain.com"
    provider_timeout_s: float = Field(default=5.0, gt=0, le=120)
    discovery_timeout_s: float = Field(default=3.0, gt=0, le=60)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    units: tuple[str, ...] = DEFAULT_UNITS
    # model name -> context window, for models whose context llama-server does not report.
    model_contexts: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MODEL_CONTEXTS))
    # model name -> provider, for cloud models whose name does not start with "gemini".
    cloud_models: dict[str, Provider] = Field(default_factory=dict)
    max_tokens_fallback: int = Field(default=8192, ge=1)
    max_body_bytes: int = Field(default=16 * 1024, ge=256)
    # The shared LiteLLM config template and its context (see gateway_config.py); unset on
    # hosts or tests where key changes need not reach a gateway.
    gateway_template: Path | None = None
    gateway_context: Path | None = None

    @field_validator("llama_url", "gateway_url", "google_api_base", "langsmith_api_base")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def db_path(self) -> Path:
        return self.state_dir / "settings.db"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def gateway_config_path(self) -> Path:
        return self.state_dir / "gateway" / "config.yaml"

    def gateway_master_key(self) -> str | None:
        """The gateway master key, read fresh from its file (it may be rotated)."""
        if self.gateway_key_file is None:
            return None
        try:
            key = self.gateway_key_file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return key or None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build the config from NOVA_* variables (unset or empty ones keep their default)."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}

        def take(var: str, field: str) -> None:
            raw = env.get(var, "").strip()
            if raw:
                values[field] = raw

        take("NOVA_SETTINGS_HOST", "host")
        take("NOVA_SETTINGS_PORT", "port")
        take("NOVA_SETTINGS_STATE_DIR", "state_dir")
        take("NOVA_LOCAL_MODEL", "local_model")
        take("NOVA_LLAMA_URL", "llama_url")
        take("NOVA_GATEWAY_URL", "gateway_url")
        take("NOVA_GATEWAY_KEY_FILE", "gateway_key_file")
        take("NOVA_GOOGLE_API_BASE", "google_api_base")
        take("NOVA_LANGSMITH_API_BASE", "langsmith_api_base")
        take("NOVA_PROVIDER_TIMEOUT_S", "provider_timeout_s")
        take("NOVA_DISCOVERY_TIMEOUT_S", "discovery_timeout_s")
        take("NOVA_LOG_LEVEL", "log_level")
        take("NOVA_MAX_TOKENS_FALLBACK", "max_tokens_fallback")
        take("NOVA_MAX_BODY_BYTES", "max_body_bytes")
        take("NOVA_GATEWAY_TEMPLATE", "gateway_template")
        take("NOVA_GATEWAY_CONTEXT", "gateway_context")
        if "gateway_key_file" not in values and env.get("CREDENTIALS_DIRECTORY"):
            values["gateway_key_file"] = Path(env["CREDENTIALS_DIRECTORY"]) / "gateway-master-key"
        units = env.get("NOVA_UNITS", "").strip()
        if units:
            values["units"] = tuple(u.strip() for u in units.split(",") if u.strip())
        for var, field in (
            ("NOVA_MODEL_CONTEXTS", "model_contexts"),
            ("NOVA_CLOUD_MODELS", "cloud_models"),
        ):
            raw = env.get(var, "").strip()
            if raw:
                try:
                    values[field] = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{var} is not valid JSON: {exc.msg}") from None
        if "model_contexts" in values and isinstance(values["model_contexts"], dict):
            values["model_contexts"] = {**DEFAULT_MODEL_CONTEXTS, **values["model_contexts"]}
        return cls.model_validate(values)
