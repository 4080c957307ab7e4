"""Creating and changing users and their settings (blocking: run in the threadpool).

Reads on the hot path do not come through here: see fast_read.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nova_common import gateway_identity

from .core import security
from .core.config import Config
from .core.db import Database
from .discovery import Catalog, context_limit
from .models import Usage, User, UserSettings
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


# --- Users, roles and gateway keys ------------------------------------------------------------

ROLES = ("admin", "user")


class UserRefused(Exception):
    """A user change that cannot be made (unknown user, name taken, last admin)."""

    def __init__(self, message: str, status_code: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def get_user(name: str) -> User:
    user = user_by_name(name)
    if user is None:
        raise UserRefused(f"no user named {name!r}", 404)
    return user


def _enabled_admins() -> int:
    return User.select().where((User.role == "admin") & (User.disabled == False)).count()  # noqa: E712


def create_user(db: Database, name: str, role: str, local_model: str | None) -> str:
    """Create an enabled user with default settings; returns its settings token (shown once)."""
    token = security.generate_token()
    with db.atomic("IMMEDIATE"):
        if user_by_name(name) is not None:
            raise UserRefused(f"a user named {name!r} exists already")
        user = User.create(
            name=name, token_hash=security.hash_token(token), created_at=utcnow(), role=role
        )
        UserSettings.insert(**default_settings_row(user.id, local_model)).execute()
    return token


def update_user(
    db: Database,
    name: str,
    *,
    role: str | None = None,
    disabled: bool | None = None,
    budget: int | None = None,
    set_budget: bool = False,
) -> User:
    """Change a user's role, enabled state or daily token budget (None: no budget). The last
    enabled admin can be neither demoted nor disabled (nobody could manage users after)."""
    with db.atomic("IMMEDIATE"):
        user = get_user(name)
        losing_admin = user.role == "admin" and not user.disabled
        if losing_admin and (role == "user" or disabled) and _enabled_admins() <= 1:
            raise UserRefused(f"{name!r} is the last enabled admin")
        if role is not None:
            user.role = role
        if disabled is not None:
            user.disabled = disabled
        if set_budget:
            user.daily_token_budget = budget
        user.save()
    return user


def rotate_token(db: Database, name: str) -> str:
    """A new settings token for ``name`` (the old one stops working); returns it."""
    token = security.generate_token()
    with db.atomic("IMMEDIATE"):
        user = get_user(name)
        user.token_hash = security.hash_token(token)
        user.save()
    return token


def set_gateway_key(db: Database, user_id: int) -> str:
    """Create or replace the user's gateway key; only its hash is stored. Returns the key."""
    key = gateway_identity.generate_key()
    with db.atomic("IMMEDIATE"):
        User.update(gateway_key_hash=gateway_identity.hash_key(key)).where(
            User.id == user_id
        ).execute()
    return key


def revoke_gateway_key(db: Database, user_id: int) -> bool:
    with db.atomic("IMMEDIATE"):
        return bool(
            User.update(gateway_key_hash=None)
            .where((User.id == user_id) & User.gateway_key_hash.is_null(False))
            .execute()
        )


def list_users() -> list[User]:
    return list(User.select().order_by(User.name))


# --- Usage --------------------------------------------------------------------------------------


def record_usage(db: Database, records: list[dict[str, Any]]) -> int:
    """Add a batch of per-(user, day, model) counts, in one transaction. Returns rows touched."""
    if not records:
        return 0
    counters = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost")
    with db.atomic("IMMEDIATE"):
        for record in records:
            Usage.insert(**record).on_conflict(
                conflict_target=[Usage.user_id, Usage.day, Usage.model],
                update={getattr(Usage, c): getattr(Usage, c) + record[c] for c in counters},
            ).execute()
    return len(records)


def usage_rows(user_id: int | None, since_day: str) -> list[Usage]:
    """Usage from ``since_day`` on, for one user (or every user: None), oldest day first."""
    query = Usage.select().where(Usage.day >= since_day)
    if user_id is not None:
        query = query.where(Usage.user_id == user_id)
    return list(query.order_by(Usage.day, Usage.user_id, Usage.model))
