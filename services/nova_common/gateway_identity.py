"""Who may call the gateway, and with what settings: the identity snapshot.

The settings service owns users, their gateway keys, settings and budgets (SQLite). The gateway
(LiteLLM, another process under another system user) must decide on every request, without a
network call or access to that database, whether a key is valid and what the user's settings
are. So the settings service publishes a snapshot file (JSON, only hashes of keys) whenever any
of that changes, before it answers the API call that changed it; the gateway stats the file on
every request (a couple of microseconds) and reloads it when it was replaced. A rotated or
revoked key therefore fails on the very next request.

This module is the one definition of that file: its format, the key format, how a key is
hashed, and the reader with its reload rule. Writer: nova_settings/gateway/identity.py; reader:
nova_gateway/auth.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .files import write_atomic

FORMAT_VERSION = 1
# Gateway keys start with this, so the gateway's auth hook can tell them from the master key
# (LiteLLM's own auth handles that) without a lookup.
KEY_PREFIX = "nk-"
KEY_BODY_CHARS = 43  # secrets.token_urlsafe(32)
OPERATOR_USER_ID = 0  # usage of requests made with the master key (no user)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def looks_like_key(key: str) -> bool:
    body = key[len(KEY_PREFIX) :]
    return (
        key.startswith(KEY_PREFIX)
        and len(body) == KEY_BODY_CHARS
        and all(c.isalnum() or c in "-_" for c in body)
        and body.isascii()
    )


def hash_key(key: str) -> str:
    """sha256 hex: enough for a 256-bit random key (no salt or KDF needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def next_utc_midnight(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def utc_day(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class Identity:
    """One user as the gateway sees them."""

    user_id: int
    name: str
    role: str  # "admin" | "user"
    disabled: bool
    model: str | None  # None: the host's local model
    temperature: float
    max_tokens: int
    daily_token_budget: int | None
    # Set while today's tokens have reached the budget: when the budget resets (ISO, UTC).
    over_budget_until: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "daily_token_budget": self.daily_token_budget,
            "over_budget_until": self.over_budget_until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        return cls(
            user_id=int(data["user_id"]),
            name=str(data["name"]),
            role=str(data["role"]),
            disabled=bool(data["disabled"]),
            model=data.get("model"),
            temperature=float(data["temperature"]),
            max_tokens=int(data["max_tokens"]),
            daily_token_budget=data.get("daily_token_budget"),
            over_budget_until=data.get("over_budget_until"),
        )

    def over_budget(self, now: datetime | None = None) -> bool:
        if self.over_budget_until is None:
            return False
        now = now or datetime.now(UTC)
        return now < datetime.fromisoformat(self.over_budget_until)


def write_snapshot(
    path: Path, by_key_hash: dict[str, Identity], unavailable_models: dict[str, str]
) -> None:
    """Replace the snapshot atomically (0640: the gateway reads it through the group).

    ``unavailable_models``: models the gateway may still list but must not serve a user's
    saved choice from (e.g. Gemini after the Google key was removed), with the reason."""
    body = {
        "version": FORMAT_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "unavailable_models": dict(sorted(unavailable_models.items())),
        "keys": {digest: ident.to_json() for digest, ident in sorted(by_key_hash.items())},
    }
    write_atomic(path, json.dumps(body, indent=1) + "\n", mode=0o640)


class SnapshotError(RuntimeError):
    """The snapshot is missing or unreadable: no gateway key can be checked."""


class SnapshotReader:
    """The snapshot as of the last time the file changed: ``lookup()`` stats the file and
    reloads it when its inode, size or mtime moved (every write is an atomic rename, so a
    new inode each time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, Identity] = {}
        self._unavailable: dict[str, str] = {}

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            self._stamp = None
            self._keys = {}
            raise SnapshotError(f"gateway identity snapshot unreadable: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {data.get('version')!r}")
            keys = {k: Identity.from_json(v) for k, v in data["keys"].items()}
            unavailable = {str(k): str(v) for k, v in data["unavailable_models"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotError(f"gateway identity snapshot unreadable: {exc}") from None
        self._keys = keys
        self._unavailable = unavailable
        self._stamp = stamp

    def lookup(self, key: str) -> Identity | None:
        """The user this key belongs to (disabled ones included), or None."""
        self._refresh()
        if not looks_like_key(key):
            return None
        return self._keys.get(hash_key(key))

    def unavailable_reason(self, model: str) -> str | None:
        """Why ``model`` must not serve a saved choice now (as of the last lookup), or None."""
        return self._unavailable.get(model)
