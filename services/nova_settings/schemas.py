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
    # False when the saved model cannot serve requests now (its provider key was removed, the
    # gateway no longer offers it): the gateway then serves the user from the local model.
    llm_model_available: bool = True
    llm_model_unavailable_reason: str | None = None

    @classmethod
    def of(
        cls, row: SettingsRow, local_model: str | None, unavailable_reason: str | None = None
    ) -> SettingsOut:
        """The API view of a stored row (NULL model: the host's local model)."""
        return cls(
            llm_model=row.llm_model or local_model,
            llm_temperature=row.llm_temperature,
            llm_max_tokens=row.llm_max_tokens,
            updated_at=row.updated_at,
            revision=row.revision,
            llm_model_available=unavailable_reason is None,
            llm_model_unavailable_reason=unavailable_reason,
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
    # Local models: loaded (answers now), loadable (loaded by the first request, evicting
    # idle models if memory is short) or unavailable (the reason says why).
    state: Literal["loaded", "loadable", "unavailable"] | None = None
    quantization: str | None = None
    file_size: int | None = None
    # The context the model was trained for (its GGUF), beside ``context``, what it is served with.
    trained_context: int | None = None


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


# --- Users, gateway keys, usage -------------------------------------------------------------

# A user name, for the API and nova-settings-admin alike.
USER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
UserName = Annotated[str, Field(pattern=USER_NAME_PATTERN)]
Role = Literal["admin", "user"]
# A daily token budget: at least one token, at most a billion.
TokenBudget = Annotated[int, Field(ge=1, le=10**9), BeforeValidator(_integral_float_to_int)]


class UserOut(BaseModel):
    name: str
    role: Role
    disabled: bool
    daily_token_budget: int | None
    has_gateway_key: bool
    created_at: str | None = None


class UsersOut(BaseModel):
    users: list[UserOut]


class UserCreate(StrictInput):
    name: UserName
    role: Role = "user"


class UserCreated(UserOut):
    # The new user's settings token: shown this once, only its hash is stored.
    token: str


class UserPatch(StrictInput):
    """Any non-empty subset; ``daily_token_budget: null`` removes the budget."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    role: Role = Omittable
    disabled: bool = Omittable
    daily_token_budget: TokenBudget | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> UserPatch:
        if not self.model_fields_set:
            raise ValueError("the body names nothing to change")
        for name in ("role", "disabled"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: null is not allowed")
        return self


class GatewayKeyOut(BaseModel):
    # The key: shown this once, only its hash is stored.
    key: str
    user: str
    gateway_url: str


class GatewayKeyRevoked(BaseModel):
    revoked: bool


class UsageRecordIn(StrictInput):
    """One batch line from the gateway: counts for a user, UTC day and model."""

    # A user id fits the column on both backends (Postgres' INTEGER is 32 bits): a larger one
    # is a 422 here, not the database's error.
    user_id: int = Field(ge=0, le=2**31 - 1)
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    model: ModelName
    requests: int = Field(ge=0, le=10**9)
    errors: int = Field(ge=0, le=10**9)
    prompt_tokens: int = Field(ge=0, le=10**12)
    completion_tokens: int = Field(ge=0, le=10**12)
    cost: float = Field(ge=0, le=10**9, allow_inf_nan=False)


class UsageBatchIn(StrictInput):
    records: list[UsageRecordIn] = Field(max_length=10_000)


class UsageRow(BaseModel):
    user: str
    day: str
    model: str
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float


class UsageOut(BaseModel):
    since: str
    rows: list[UsageRow]
    total_tokens: int
    requests: int
    cost: float
