"""Creating and changing users and their settings (blocking: run in the threadpool).

Reads on the hot path do not come through here: see fast_read.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .core.config import Config
from .core.db import Database
from .discovery import Catalog, context_limit
from .models import User, UserSettings
from .schemas import SettingsOut

DEFAULT_TEMPERATURE = 0.6
DEFAULT_MAX_TOKENS = 2048


class SettingsRefused(Exception):
    """A change that would make the settings invalid; names the offending field."""

    def __init__(self, field: str, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status_code = status_code


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def default_settings_row(user_id: int, local_model: str | None) -> dict[str, Any]:
    return {
        "user": user_id,
        "llm_model": local_model,
        "llm_temperature": DEFAULT_TEMPERATURE,
        "llm_max_tokens": DEFAULT_MAX_TOKENS,
        "updated_at": utcnow(),
        "revision": 0,
    }


def user_by_name(name: str) -> User | None:
    return User.get_or_none(User.name == name)


def set_user_token(name: str, token_hash: str, local_model: str | None) -> User:
    """Create user ``name`` with this token hash, or give the existing user this hash; either
    way make sure the user has a settings row. Call inside a transaction."""
    user = user_by_name(name)
    if user is None:
        user = User.create(name=name, token_hash=token_hash, created_at=utcnow())
    else:
        user.token_hash = token_hash
        user.save()
    if UserSettings.get_or_none(UserSettings.user == user.id) is None:
        UserSettings.insert(**default_settings_row(user.id, local_model)).execute()
    return user


def _row_for_update(user_id: int, config: Config) -> UserSettings:
    row = UserSettings.get_or_none(UserSettings.user == user_id)
    if row is None:
        UserSettings.insert(**default_settings_row(user_id, config.local_model)).execute()
        row = UserSettings.get(UserSettings.user == user_id)
    return row


def seed_settings(db: Database, user_id: int, config: Config) -> SettingsOut:
    """Create the default settings row if missing (takes the write lock: threadpool)."""
    with db.atomic("IMMEDIATE"):
        row = _row_for_update(user_id, config)
    return SettingsOut.of(row, config.local_model)


def apply_changes(
    db: Database,
    user_id: int,
    changes: dict[str, Any],
    catalog: Catalog | None,
    config: Config,
) -> SettingsOut:
    """Read-modify-write inside BEGIN IMMEDIATE, so concurrent writers serialise and none is
    lost. Raises SettingsRefused (and rolls back: the row is unchanged) when the result would
    be invalid. ``catalog`` is required when the model or max_tokens change."""
    with db.atomic("IMMEDIATE"):
        row = _row_for_update(user_id, config)
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
            limit = context_limit(catalog, model or "")
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
    return SettingsOut.of(row, config.local_model)
