"""Service configuration: the NOVA_* environment of the systemd unit, read once per process.

Ansible writes the environment file (the nova_settings role's
``templates/etc/nova/settings.env.j2``); every variable name is spelled out once below, as the
field's alias. Unset or empty variables keep the default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from nova_common.credentials import LLAMA_API_KEY, credential_path, read_secret
from nova_common.local_models import local_models
from nova_common.suite import STATUS_UNITS

Provider = Literal["google", "langsmith"]
PROVIDERS: tuple[Provider, ...] = ("google", "langsmith")


def _credential_key_file() -> Path | None:
    return credential_path("gateway-master-key")


def _credential_metrics_token() -> Path | None:
    return credential_path("metrics-token")


def _credential_llama_api_key() -> Path | None:
    return credential_path(LLAMA_API_KEY)


# The Postgres role's password (LoadCredential=settings-database-password), when
# NOVA_SETTINGS_DATABASE_URL names a server.
DATABASE_CREDENTIAL = "settings-database-password"


def _credential_database_password() -> Path | None:
    return credential_path(DATABASE_CREDENTIAL)


class Config(BaseSettings):
    """Everything the service reads from its environment, validated."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",  # the environment holds much else
        env_ignore_empty=True,
        populate_by_name=True,  # Config(state_dir=...) in code and tests
        # A refused value is never echoed: NOVA_SETTINGS_DATABASE_URL may carry a password.
        hide_input_in_errors=True,
    )

    host: str = Field("127.0.0.1", alias="NOVA_SETTINGS_HOST")
    port: int = Field(8000, ge=1, le=65535, alias="NOVA_SETTINGS_PORT")
    state_dir: Path = Field(Path("/var/lib/nova-settings"), alias="NOVA_SETTINGS_STATE_DIR")
    # Postgres instead of the SQLite file in state_dir (unset: SQLite), as
    # postgresql://ROLE@HOST:PORT/DATABASE[?sslmode=...]. Never with a password: that comes
    # from database_password_file.
    database_url: str | None = Field(None, alias="NOVA_SETTINGS_DATABASE_URL")
    database_password_file: Path | None = Field(
        default_factory=_credential_database_password, alias="NOVA_SETTINGS_DATABASE_PASSWORD_FILE"
    )
    # The root-only file that credential is loaded from (LoadCredential=): the password file of
    # nova-settings-admin run by root on the host, where there is no credential.
    database_password_source: Path | None = Field(
        None, alias="NOVA_SETTINGS_DATABASE_PASSWORD_SOURCE"
    )
    # Postgres connections this process may hold: one per request in flight (a request past it
    # waits up to 10 s). Every host's pool counts against the server's max_connections.
    database_pool_size: int = Field(64, ge=2, le=1000, alias="NOVA_SETTINGS_DATABASE_POOL_SIZE")
    # The default local model, and every local model the gateway offers (comma-separated; the
    # default among them; unset: the default alone).
    local_model: str | None = Field(None, alias="NOVA_LOCAL_MODEL")
    local_models_listed: Annotated[tuple[str, ...], NoDecode] = Field((), alias="NOVA_LOCAL_MODELS")
    llama_url: str = Field("http://127.0.0.1:8080", alias="NOVA_LLAMA_URL")
    # llama-server's API key (LoadCredential=llama-api-key): /props for discovery.
    llama_api_key_file: Path | None = Field(
        default_factory=_credential_llama_api_key, alias="NOVA_LLAMA_API_KEY_FILE"
    )
    gateway_url: str = Field("http://127.0.0.1:4000", alias="NOVA_GATEWAY_URL")
    # Default: the credential systemd passes (LoadCredential=gateway-master-key).
    gateway_key_file: Path | None = Field(
        default_factory=_credential_key_file, alias="NOVA_GATEWAY_KEY_FILE"
    )
    google_api_base: str = Field(
        "https://generativelanguage.googleapis.com/v1beta", alias="NOVA_GOOGLE_API_BASE"
    )
    langsmith_api_base: str = Field(
        "https://api.smith.langchain.com", alias="NOVA_LANGSMITH_API_BASE"
    )
    provider_timeout_s: float = Field(5.0, gt=0, le=120, alias="NOVA_PROVIDER_TIMEOUT_S")
    discovery_timeout_s: float = Field(3.0, gt=0, le=60, alias="NOVA_DISCOVERY_TIMEOUT_S")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", alias="NOVA_LOG_LEVEL"
    )
    # The units GET /api/system/status reports on: a comma-separated list.
    units: Annotated[tuple[str, ...], NoDecode] = Field(STATUS_UNITS, alias="NOVA_UNITS")
    max_body_bytes: int = Field(16 * 1024, ge=256, alias="NOVA_MAX_BODY_BYTES")
    # The gateway config's context, written by Ansible (see gateway/litellm_config.py); unset
    # on hosts or tests where key changes need not reach a gateway.
    gateway_context: Path | None = Field(None, alias="NOVA_GATEWAY_CONTEXT")
    # The identity snapshot the gateway reads (nova_common/gateway_identity.py); unset where
    # no gateway admits users by their own keys.
    gateway_identity: Path | None = Field(None, alias="NOVA_GATEWAY_IDENTITY")
    # The settings page's Status: what the suite last came up healthy on, and the last
    # rollback to it (both written by the nova_stack role; absent files show as "none").
    last_good_file: Path | None = Field(None, alias="NOVA_LAST_GOOD_FILE")
    last_rollback_file: Path | None = Field(None, alias="NOVA_LAST_ROLLBACK_FILE")
    # GET /metrics answers a bearer with this token (Prometheus'); no file: /metrics is off.
    metrics_token_file: Path | None = Field(
        default_factory=_credential_metrics_token, alias="NOVA_METRICS_TOKEN_FILE"
    )
    # Sampled for /metrics every metrics_sample_s: the model directory's disk, the watchdog's
    # state file (NVML always).
    metrics_sample_s: float = Field(5.0, ge=0.5, le=300, alias="NOVA_METRICS_SAMPLE_S")
    model_dir: Path | None = Field(None, alias="NOVA_MODEL_DIR")
    watchdog_state: Path | None = Field(None, alias="NOVA_WATCHDOG_STATE")
    # Prometheus (role nova_monitoring), read for the settings page's plots; unset: no plots.
    prometheus_url: str | None = Field(None, alias="NOVA_PROMETHEUS_URL")
    # The settings page: how long a sign-in lasts, and failed sign-ins allowed per client
    # address per window before it is refused (429) for the rest of the window.
    web_session_hours: float = Field(8.0, gt=0, le=24 * 30, alias="NOVA_WEB_SESSION_HOURS")
    signin_failures_allowed: int = Field(5, ge=1, le=1000, alias="NOVA_SIGNIN_FAILURES_ALLOWED")
    signin_window_s: float = Field(300.0, gt=0, le=86400, alias="NOVA_SIGNIN_WINDOW_S")

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip()
            if not value:  # whitespace only: as if unset
                raise PydanticUseDefault()
        return value

    @field_validator(
        "llama_url", "gateway_url", "google_api_base", "langsmith_api_base", "prometheus_url"
    )
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = urlsplit(value)
            url.port  # noqa: B018 -- parses the port: ValueError when it is not a number
        except ValueError:
            raise ValueError("not a URL") from None
        if url.scheme not in ("postgresql", "postgres"):
            raise ValueError("must be a postgresql:// URL (unset for SQLite)")
        query = {name.lower() for name, _ in parse_qsl(url.query)}
        if url.password is not None or "password" in query:
            raise ValueError(
                "must not carry a password: put it in the file that"
                " NOVA_SETTINGS_DATABASE_PASSWORD_FILE names"
            )
        if not url.hostname or not url.username or not url.path.strip("/"):
            raise ValueError("must name the role, the host and the database")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("units", "local_models_listed", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(unit.strip() for unit in value.split(",") if unit.strip())
        return value

    @property
    def local_models(self) -> tuple[str, ...]:
        return local_models(self.local_model, self.local_models_listed)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "settings.db"

    def database_password_path(self) -> Path | None:
        """Where the Postgres password is read: the named file or credential, else (root's
        admin command on the host) the credential's source when this process may read it."""
        if self.database_password_file is not None:
            return self.database_password_file
        source = self.database_password_source
        if source is not None and os.access(source, os.R_OK):
            return source
        return None

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def gateway_config_path(self) -> Path:
        return self.state_dir / "gateway" / "config.yaml"

    def gateway_master_key(self) -> str | None:
        """The gateway master key, read fresh from its file (it may be rotated)."""
        return read_secret(self.gateway_key_file)

    def metrics_token(self) -> str | None:
        """Prometheus' scrape token, read fresh from its file."""
        return read_secret(self.metrics_token_file)

    def llama_api_key(self) -> str | None:
        """llama-server's API key, read fresh from its file."""
        return read_secret(self.llama_api_key_file)
