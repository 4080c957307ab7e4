"""Pydantic models at the edges of the API."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from nova_common.nvml import GpuDevice

from .core.config import Provider

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+\-]{0,199}$"
MAX_TOKENS_CEILING = 2**31 - 1


class StrictInput(BaseModel):
    """Request bodies: unknown fields refused, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _integral_float_to_int(value: object) -> object:
    """JSON Schema counts 2048.0 as an integer, and so does the API (1.5 stays refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=MODEL_NAME_PATTERN)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]
# The validator wraps the constrained int (metadata applies left to right), so the bounds stay
# minimum/maximum in the JSON schema.
MaxTokens = Annotated[
    int, Field(ge=1, le=MAX_TOKENS_CEILING), BeforeValidator(_integral_float_to_int)
]


def _omit_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


# A PATCH field: may be left out, and is never null. The None default only marks "left out"
# (pydantic does not validate defaults); the JSON schema shows neither it nor null.
Omittable = Field(default=None, json_schema_extra=_omit_default)


class SettingsPut(StrictInput):
    """PUT: the whole settings object."""

    llm_model: ModelName
    llm_temperature: Temperature
    llm_max_tokens: MaxTokens


class SettingsPatch(StrictInput):
    """PATCH: any non-empty subset of the settings; null is not a value."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    llm_model: ModelName = Omittable
    llm_temperature: Temperature = Omittable
    llm_max_tokens: MaxTokens = Omittable

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


class SettingsRow(Protocol):
    """A stored settings row: a models.UserSettings, or the hot path's StoredSettings."""

    @property
    def llm_model(self) -> str | None: ...
    @property
    def llm_temperature(self) -> float: ...
    @property
    def llm_max_tokens(self) -> int: ...
    @property
    def updated_at(self) -> str | None: ...
    @property
    def revision(self) -> int: ...


class SettingsOut(BaseModel):
    llm_model: str | None
    llm_temperature: float
    llm_max_tokens: int
    updated_at: str | None = None
    revision: int = 0

    @classmethod
    def of(cls, row: SettingsRow, local_model: str | None) -> SettingsOut:
        """The API view of a stored row (NULL model: the host's local model)."""
        return cls(
            llm_model=row.llm_model or local_model,
            llm_temperature=row.llm_temperature,
            llm_max_tokens=row.llm_max_tokens,
            updated_at=row.updated_at,
            revision=row.revision,
        )


class ErrorDetail(BaseModel):
    """An error answer other than invalid input."""

    detail: str


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
