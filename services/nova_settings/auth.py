"""Bearer tokens: generation, hashing, and the user (with their settings) a token names."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import peewee

from .db import Param, PointReader, PreparedQuery, User, UserSettings
from .store import StoredSettings

# secrets.token_urlsafe(32) gives 43 characters of [A-Za-z0-9_-]; allow some slack.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{20,256}$")

# One indexed query (unique index user_token_hash) that also brings the user's settings row:
# the chat agent reads its settings before every LLM call, so that read costs no second query.
_USER_BY_TOKEN_HASH = PreparedQuery(
    lambda: (
        User.select(
            User.id,
            User.name,
            User.token_hash,
            UserSettings.llm_model,
            UserSettings.llm_temperature,
            UserSettings.llm_max_tokens,
            UserSettings.updated_at,
            UserSettings.revision,
        )
        .join(UserSettings, peewee.JOIN.LEFT_OUTER, on=(UserSettings.user == User.id))
        .where(User.token_hash == Param("token_hash"))
    )
)


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """The caller, and their settings row as read in the same query (None: no row yet)."""

    id: int
    name: str
    settings: StoredSettings | None


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """sha256 hex of the token: enough for a 256-bit random token (no salt or KDF needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


def user_for_token(reader: PointReader, token: str) -> AuthenticatedUser | None:
    """The user whose stored hash matches ``token``, or None.

    The lookup is by the token's hash (unique index), so its timing says nothing about the
    token; the final comparison is constant-time anyway. No caching: a rotated or deleted
    token stops working on the next request.
    """
    if not _TOKEN_RE.match(token):
        return None
    digest = hash_token(token)
    row = reader.fetchone(_USER_BY_TOKEN_HASH, token_hash=digest)
    if row is None or not hmac.compare_digest(row[2], digest):
        return None
    settings = None if row[7] is None else StoredSettings(*row[3:8])
    return AuthenticatedUser(id=row[0], name=row[1], settings=settings)
