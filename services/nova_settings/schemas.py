"""Pydantic models at the edges of the API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .config import Provider

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+\-]{0,199}$"
MAX_TOKENS_CEILING = 2**31 - 1


class StrictInput(BaseModel):
    """Request bodies: unknown fields refused, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=MODEL_NAME_PATTERN)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_CEILING)]


class SettingsPut(StrictInput):
    """PUT: the whole settings object."""

    llm_model: ModelName
    llm_temperature: Temperature
    llm_max_tokens: MaxTokens


class SettingsPatch(StrictInput):
    """PATCH: any non-empty subset of the settings; null is not a value."""

    llm_model: ModelName | None = None
    llm_temperature: Temperature | None = None
    llm_max_tokens: MaxTokens | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("null is not allowed; leave the field out to keep its value")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> SettingsPatch:
        if not self.model_fields_set:
            raise ValueError("the body names no setting to change")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class SettingsOut(BaseModel):
    llm_model: str | None
    llm_temperature: float
    llm_max_tokens: int
    updated_at: str | None = None
    revision: int = 0


class ValidateKeyIn(StrictInput):
    provider: Provider
    # Printable ASCII without spaces: keeps header injection and stray whitespace out.
    api_key: str = Field(min_length=8, max_length=512, pattern=r"^[\x21-\x7e]+$")
    store: bool = False


KeyStatus = Literal["valid", "rejected", "unreachable"]


class ValidateKeyOut(BaseModel):
    provider: Provider
    status: KeyStatus
    detail: str
    stored: bool
    masked_key: str | None = None


class StoredKey(BaseModel):
    provider: Provider
    stored: bool
    masked_key: str | None = None
    updated_at: str | None = None


class ApiKeysOut(BaseModel):
    keys: list[StoredKey]


class ModelOut(BaseModel):
    id: str
    kind: Literal["local", "cloud", "other"]
    provider: str | None
    available: bool
    reason: str
    context: int | None = None


class GatewayState(BaseModel):
    reachable: bool
    error: str | None = None


class ModelsOut(BaseModel):
    gateway: GatewayState
    models: list[ModelOut]


class UnitState(BaseModel):
    unit: str
    active_state: str
    sub_state: str
    unit_file_state: str
    n_restarts: int | None = None
    reason: str | None = None


class ServiceHealth(BaseModel):
    url: str
    healthy: bool
    detail: str


class GpuDevice(BaseModel):
    index: int
    name: str
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    utilization_percent: int | None
    temperature_c: int | None
    power_w: float | None


class GpuState(BaseModel):
    available: bool
    reason: str | None = None
    driver_version: str | None = None
    devices: list[GpuDevice] = Field(default_factory=list)


class SystemStatusOut(BaseModel):
    units: list[UnitState]
    llama_server: ServiceHealth
    gateway: ServiceHealth
    gpu: GpuState
