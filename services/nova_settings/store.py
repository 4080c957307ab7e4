"""Reading and changing a user's settings (blocking; run in the threadpool)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import Config
from .db import Database, UserSettings, default_settings_row, utcnow
from .discovery import Catalog
from .schemas import SettingsOut

if TYPE_CHECKING:
    from .auth import AuthenticatedUser


class StoredSettings(NamedTuple):
    """A user_settings row as read on the hot path (see auth.UserLookup)."""

    llm_model: str | None
    llm_temperature: float
    llm_max_tokens: int
    updated_at: str | None
    revision: int


class SettingsRefused(Exception):
    """A change that would make the settings invalid; names the offending field."""

    def __init__(self, field: str, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status_code = status_code


def _out(row: UserSettings, config: Config) -> SettingsOut:
    return settings_out(
        StoredSettings(
            row.llm_model, row.llm_temperature, row.llm_max_tokens, row.updated_at, row.revision
        ),
        config.local_model,
    )


def _row_for_update(db: Database, user: AuthenticatedUser, config: Config) -> UserSettings:
    row = UserSettings.get_or_none(UserSettings.user == user.id)
    if row is None:
        UserSettings.insert(**default_settings_row(user.id, config.local_model)).execute()
        row = UserSettings.get(UserSettings.user == user.id)
    return row


def settings_out(stored: StoredSettings, local_model: str | None) -> SettingsOut:
    """The API view of a stored row (NULL model: the host's local model)."""
    return SettingsOut(
        llm_model=stored.llm_model or local_model,
        llm_temperature=stored.llm_temperature,
        llm_max_tokens=stored.llm_max_tokens,
        updated_at=stored.updated_at,
        revision=stored.revision,
    )


@lru_cache(maxsize=4096)
def settings_json(stored: StoredSettings, local_model: str | None) -> bytes:
    """The JSON body of ``GET /api/user-settings/`` for a stored row.

    A pure function of the row (every column, revision included) and the host's local model,
    so it is memoised: the hot read then costs no model validation and no serialisation.
    """
    return settings_out(stored, local_model).model_dump_json().encode()


def seed_settings(db: Database, user: AuthenticatedUser, config: Config) -> SettingsOut:
    """Create the default settings row if missing (takes the write lock: threadpool)."""
    with db.atomic("IMMEDIATE"):
        row = _row_for_update(db, user, config)
    return _out(row, config)


def context_limit(catalog: Catalog, model: str, config: Config) -> int:
    info = catalog.models.get(model)
    if info is not None and info.context:
        return info.context
    return config.model_contexts.get(model, config.max_tokens_fallback)


def apply_changes(
    db: Database,
    user: AuthenticatedUser,
    changes: dict[str, Any],
    catalog: Catalog | None,
    config: Config,
) -> SettingsOut:
    """Read-modify-write inside BEGIN IMMEDIATE, so concurrent writers serialise and none is
    lost. Raises SettingsRefused (and rolls back: the row is unchanged) when the result would
    be invalid. ``catalog`` is required when the model or max_tokens change."""
    with db.atomic("IMMEDIATE"):
        row = _row_for_update(db, user, config)
        model = changes.get("llm_model", row.llm_model or config.local_model)
        if "llm_model" in changes:
            assert catalog is not None
            info = catalog.models.get(model)
            if info is None:
                raise SettingsRefused(
                    "llm_model", "llm_model: not a model the gateway knows (see GET /api/models)"
                )
            if not info.available:
                raise SettingsRefused(
                    "llm_model", f"llm_model: model is not available now: {info.reason}"
                )
        max_tokens = changes.get("llm_max_tokens", row.llm_max_tokens)
        if "llm_model" in changes or "llm_max_tokens" in changes:
            assert catalog is not None
            limit = context_limit(catalog, model or "", config)
            if max_tokens > limit:
                raise SettingsRefused(
                    "llm_max_tokens",
                    f"llm_max_tokens: {max_tokens} exceeds the context of {model} ({limit})",
                )
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        row.revision += 1
        row.save()
    return _out(row, config)
