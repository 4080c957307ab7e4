"""Bearer tokens: generation, hashing, and the user (with their settings) a token names."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import peewee

from .commit_stamp import CommitStamp
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


def _query_user(reader: PointReader, digest: str) -> AuthenticatedUser | None:
    """The user whose stored token hash is ``digest``, or None: one query on the unique index
    (so its timing says nothing about the token); the final comparison is constant-time
    anyway."""
    row = reader.fetchone(_USER_BY_TOKEN_HASH, token_hash=digest)
    if row is None or not hmac.compare_digest(row[2], digest):
        return None
    settings = None if row[7] is None else StoredSettings(*row[3:8])
    return AuthenticatedUser(id=row[0], name=row[1], settings=settings)


class UserLookup:
    """The user (with settings) a bearer token names, from a cache that is trusted only while
    nothing has been committed.

    Every authenticated request looks its caller up, and the chat agent reads its settings
    before every LLM call; under load the query costs the settings read a fifth of its
    throughput (scripts/bench-settings). The cache is keyed by the token's hash (no tokens in
    memory) and emptied as soon as SQLite's commit stamp moves: a commit by this service, by
    ``nova-settings-admin`` or by anything else that writes the file. A rotated or deleted
    token therefore stops working, and a changed setting is seen, on the very next request.
    Unknown tokens are never cached. Runs on the event loop only.
    """

    def __init__(self, reader: PointReader, stamp: CommitStamp, max_entries: int = 4096) -> None:
        self._reader = reader
        self._stamp = stamp
        self._max_entries = max_entries
        self._cached: dict[str, AuthenticatedUser] = {}
        self._cached_at: bytes | None = None

    def user_for_token(self, token: str) -> AuthenticatedUser | None:
        """The user whose token this is, or None."""
        if not _TOKEN_RE.match(token):
            return None
        digest = hash_token(token)
        # Read the stamp before the query: a commit that lands in between makes the cached
        # row newer than its stamp, never older, and empties the cache on the next request.
        stamp = self._stamp.read()
        if stamp is None or stamp != self._cached_at:
            self._cached.clear()
            self._cached_at = stamp
        elif (user := self._cached.get(digest)) is not None:
            return user
        user = _query_user(self._reader, digest)
        if user is not None and stamp is not None:
            if len(self._cached) >= self._max_entries:
                self._cached.clear()
            self._cached[digest] = user
        return user
