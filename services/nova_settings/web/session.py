"""Signed-in browsers: the session cookie, its CSRF token, the Try-it gateway key, throttling.

A session is a random cookie value (``HttpOnly``, ``SameSite=Strict``, ``Secure`` over TLS,
expiring); only its sha256 is stored (table ``web_session``), with the session's CSRF token
and expiry. Every write the page makes carries that CSRF token (a form field or the
``X-CSRF-Token`` header) and is refused without it. Signing out deletes the row; disabling a
user ends their sessions at the next request (the lookup skips disabled users).

Try it streams through the gateway as the signed-in user with a gateway key derived from the
cookie (HMAC), so the service never stores a usable key: the row keeps the derived key's hash,
the identity snapshot admits it as the user's, and it dies with the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import peewee

from nova_common.gateway_identity import KEY_PREFIX, hash_key

from ..core.db import Database
from ..core.security import TOKEN_RE, hash_token, secrets_match
from ..fast_read import AuthenticatedUser, StoredSettings
from ..models import User, UserSettings, WebSession

COOKIE_NAME = "nova_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
TRY_KEY_CONTEXT = b"nova-settings try-it gateway key"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The browser's session and its user (with settings)."""

    cookie: str
    csrf_token: str
    expires_at: str
    has_try_key: bool
    user: AuthenticatedUser


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def start(db: Database, user_id: int, hours: float) -> tuple[str, datetime]:
    """A new session for ``user_id``: returns the cookie value and when it expires. Expired
    sessions of anyone are dropped on the way."""
    cookie = secrets.token_urlsafe(32)
    now = _now()
    expires = now + timedelta(hours=hours)
    with db.atomic("IMMEDIATE"):
        WebSession.delete().where(WebSession.expires_at <= _iso(now)).execute()
        WebSession.create(
            id_hash=hash_token(cookie),
            user=user_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=_iso(now),
            expires_at=_iso(expires),
        )
    return cookie, expires


def load(db: Database, cookie: str | None) -> SignedIn | None:
    """The live session this cookie names, with its enabled user; None otherwise."""
    if not cookie or not TOKEN_RE.match(cookie):
        return None
    row = (
        WebSession.select(
            WebSession.csrf_token,
            WebSession.expires_at,
            WebSession.try_key_hash,
            User.id,
            User.name,
            User.role,
            UserSettings.llm_model,
            UserSettings.llm_temperature,
            UserSettings.llm_max_tokens,
            UserSettings.updated_at,
            UserSettings.revision,
        )
        .join(User, on=(WebSession.user == User.id))
        .join(UserSettings, peewee.JOIN.LEFT_OUTER, on=(UserSettings.user == User.id))
        .where(
            (WebSession.id_hash == hash_token(cookie))
            & (WebSession.expires_at > _iso(_now()))
            & (User.disabled == False)  # noqa: E712
        )
        .tuples()
        .first()
    )
    if row is None:
        return None
    settings = None if row[7] is None else StoredSettings(*row[6:11])
    user = AuthenticatedUser(id=row[3], name=row[4], role=row[5], settings=settings)
    return SignedIn(
        cookie=cookie,
        csrf_token=row[0],
        expires_at=row[1],
        has_try_key=row[2] is not None,
        user=user,
    )


def end(db: Database, cookie: str) -> bool:
    """Sign out: the row goes, and with it the session's Try-it key. True if there was one."""
    with db.atomic("IMMEDIATE"):
        return bool(WebSession.delete().where(WebSession.id_hash == hash_token(cookie)).execute())


def csrf_ok(signed_in: SignedIn, presented: str | None) -> bool:
    return presented is not None and secrets_match(presented, signed_in.csrf_token)


def try_key(cookie: str) -> str:
    """The session's gateway key for Try it: derived from the cookie, never stored."""
    digest = hmac.new(cookie.encode("utf-8"), TRY_KEY_CONTEXT, hashlib.sha256).digest()
    return KEY_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def admit_try_key(db: Database, signed_in: SignedIn) -> bool:
    """Record the hash of the session's Try-it key; True when it was new (publish the
    identity snapshot then)."""
    if signed_in.has_try_key:
        return False
    with db.atomic("IMMEDIATE"):
        WebSession.update(try_key_hash=hash_key(try_key(signed_in.cookie))).where(
            WebSession.id_hash == hash_token(signed_in.cookie)
        ).execute()
    return True


class SignInThrottle:
    """Failed sign-ins per client address: after ``allowed`` failures within ``window_s``
    seconds, that address is refused until the oldest failure leaves the window. In memory
    (one process serves the page); a restart forgets, which only helps the owner."""

    def __init__(self, allowed: int, window_s: float, max_clients: int = 10_000) -> None:
        self.allowed = allowed
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        now = time.monotonic()
        failures = self._recent(client, now)
        if len(failures) < self.allowed:
            return None
        return max(1, int(failures[0] + self.window_s - now + 0.999))

    def failed(self, client: str) -> None:
        now = time.monotonic()
        if client not in self._failures and len(self._failures) >= self.max_clients:
            self._failures.clear()  # bounded memory; an attacker with many addresses gains little
        self._recent(client, now)
        self._failures.setdefault(client, deque()).append(now)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
