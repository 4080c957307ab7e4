"""The tuned read path: what lets ``GET /api/user-settings/`` cost little more than a constant.

Why this module exists: the chat agent reads its settings before every LLM call, so the
authenticated settings read is the service's hot path, and done the plain way (a pooled peewee
connection per request, peewee building the SQL each time, FastAPI's nested routers, response
validation) it cost several times what SQLite takes to answer it. Everything done about that
lives here, so that the rest of the package stays plain FastAPI and peewee:

* one prepared query brings the caller's user row and settings row together, on a per-thread,
  ``query_only``, autocommit sqlite3 connection instead of a pooled one (``PreparedQuery``,
  ``PointReader``);
* ``UserLookup`` keeps that answer per token hash and trusts it only while SQLite's WAL-index
  header has not moved (``CommitStamp``): a commit by anyone, in any process, empties the cache
  before the next lookup, so a changed setting or a rotated token is seen at once;
* the response body is memoised per stored row (``settings_json``) and sent without being
  validated again; the Authorization header is read straight from the ASGI scope
  (``bearer_token``);
* the routes sit in the app's own route table, not behind ``include_router`` (``flat_routes``),
  and the objects built at startup are moved out of the cyclic GC's way (``freeze_startup_heap``).

On Postgres (``NOVA_SETTINGS_DATABASE_URL``) there is no file to open beside the pool and no
WAL-index to watch: the same prepared query runs on the request's pooled connection
(``PooledPointReader``) and the row cache stays off (``CommitStamp.for_database``), so every
lookup asks the server and still sees every commit at once.

What the benchmark showed (``scripts/bench-settings``: requests/s of the settings read over
those of ``GET /api/ping`` on the same server, 1/8/32 clients, 2 vCPUs; target >= 0.8): with
the single query on the per-thread connection, the flat route table and ``gc.freeze`` the
ratio was 0.73; the commit-stamped row cache took it to 0.89-0.98. A change here is judged by
that benchmark, and its correctness by ``tests/nova_settings/test_user_lookup.py`` and the settings
tests.
"""

from __future__ import annotations

import gc
import logging
import mmap
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import peewee
from fastapi import APIRouter, FastAPI
from starlette.types import Scope

from .core.db import BUSY_TIMEOUT_MS, Database, SqliteDatabase
from .core.security import TOKEN_RE, digests_match, hash_token
from .models import User, UserSettings
from .schemas import SettingsOut

log = logging.getLogger(__name__)


# --- Prepared point reads on per-thread connections -------------------------------------------


class PreparedQuery:
    """SQL that peewee generates once and that is then run many times with new parameters.

    peewee builds the SQL text on every execution, which on the hot path (the token lookup)
    costs several times what SQLite takes to run the indexed query. Build the query with
    ``Param("name")`` placeholders; ``bind`` substitutes them by name.
    """

    def __init__(self, build: Any) -> None:
        self._build = build
        # Per dialect (placeholders differ: ? for SQLite, %s for Postgres).
        self._compiled: dict[type[peewee.Database], tuple[str, list[Any]]] = {}

    def bind(self, dialect: peewee.Database, **values: Any) -> tuple[str, list[Any]]:
        """The SQL in ``dialect``'s flavour and its parameters, ``values`` put in."""
        compiled = self._compiled.get(type(dialect))
        if compiled is None:
            sql, params = dialect.get_sql_context().parse(self._build())
            compiled = self._compiled[type(dialect)] = (sql, list(params))
        sql, params = compiled
        return sql, [values[p.name] if isinstance(p, _Placeholder) else p for p in params]


# Compiles the prepared queries for the plain sqlite3 connections (never connects).
_SQLITE_DIALECT = peewee.SqliteDatabase(None)


class PointReader:
    """Plain sqlite3 connections for indexed point reads on the hot path, one per thread.

    Every authenticated request reads the caller's row; doing that through the pool costs a
    checkout, peewee's bookkeeping and a return, several times the query itself. These
    connections are ``query_only`` (a bug here cannot write) and autocommit: each read is its
    own WAL snapshot, so it sees every committed write and never waits on a writer.
    """

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute("PRAGMA query_only = 1")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def fetchone(self, query: PreparedQuery, **values: Any) -> tuple[Any, ...] | None:
        sql, params = query.bind(_SQLITE_DIALECT, **values)
        # fetchall() runs the statement to completion, which ends its read snapshot; a
        # half-read statement would pin this connection to an old snapshot.
        rows = self._connection().execute(sql, params).fetchall()
        return rows[0] if rows else None

    def close_all(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()


class PooledPointReader:
    """Postgres: the point reads on the request's pooled connection (checked out here if the
    request has none yet; DbScopeMiddleware returns it). A per-thread connection of its own
    would save a pool checkout but cost the server a connection per thread."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def fetchone(self, query: PreparedQuery, **values: Any) -> tuple[Any, ...] | None:
        if self._db.is_closed():
            self._db.connect()
        sql, params = query.bind(self._db, **values)
        return self._db.execute_sql(sql, params).fetchone()

    def close_all(self) -> None:
        """The pool's connections are closed with the pool (``db.close_all()``)."""


def point_reader(db: Database) -> PointReader | PooledPointReader:
    """The hot path's reader for ``db``: its own sqlite3 connections, or Postgres' pool."""
    if isinstance(db, SqliteDatabase):
        return PointReader(db.database)
    return PooledPointReader(db)


class _Placeholder:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Param({self.name!r})"


def Param(name: str) -> peewee.Value:
    """A named placeholder for PreparedQuery (kept out of the field's type conversion)."""
    return peewee.Value(_Placeholder(name), converter=False)


# --- Has anything been committed? The WAL-index header ------------------------------------------
#
# Every commit, by any connection in any process, rewrites the WAL-index header at the start of
# the database's ``-shm`` file (a documented, stable format: https://www.sqlite.org/walformat.html,
# section 2.2). The header holds a change counter, the last valid frame and checksums, and it is
# written when the commit becomes visible to readers. Reading it through a shared mapping costs a
# memory copy, no system call and no lock, which is what lets UserLookup cache the caller's row
# and still see every commit at once. The header is written twice, second copy first; like
# SQLite's own readers, a read whose copies differ (a writer was mid-update) is "unknown", never
# "unchanged".

_HEADER_BYTES = 48  # one copy of the WAL-index header (WalIndexHdr)


class CommitStamp:
    """``read()`` gives a value that changes whenever a transaction commits, or None when that
    cannot be told (database not in WAL mode, or a header read torn by a writer)."""

    def __init__(self, anchor: sqlite3.Connection | None, header: mmap.mmap | None) -> None:
        self._anchor = anchor
        self._header = header

    @classmethod
    def open(cls, db_path: Path | str) -> CommitStamp:
        """Map ``<db>-shm``; a stamp that always reads None if the database is not in WAL mode.

        The anchor connection stays open for the stamp's lifetime: SQLite deletes the ``-shm``
        file when the last connection to the database closes, and a mapping of a deleted file
        would never change again.
        """
        anchor = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
        try:
            anchor.execute("PRAGMA query_only = 1")
            (mode,) = anchor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                raise ValueError(f"the database is not in WAL mode ({mode})")
            # A read maps the wal-index (and creates -shm if this is the first connection).
            anchor.execute("SELECT count(*) FROM sqlite_master").fetchall()
            with open(f"{db_path}-shm", "rb") as shm:
                header = mmap.mmap(shm.fileno(), 2 * _HEADER_BYTES, access=mmap.ACCESS_READ)
        except (OSError, ValueError, sqlite3.Error) as exc:
            log.warning("cannot read the WAL-index header (%s): the hot-path cache is off", exc)
            anchor.close()
            return cls(None, None)
        return cls(anchor, header)

    @classmethod
    def for_database(cls, db: Database) -> CommitStamp:
        """SQLite's stamp; on Postgres one that always reads None (nothing to map: a commit
        there is not visible in any local file), which keeps UserLookup's cache off."""
        if isinstance(db, SqliteDatabase):
            return cls.open(db.database)
        return cls(None, None)

    @property
    def enabled(self) -> bool:
        return self._header is not None

    def read(self) -> bytes | None:
        header = self._header
        if header is None:
            return None
        first = header[:_HEADER_BYTES]
        if first != header[_HEADER_BYTES : 2 * _HEADER_BYTES]:
            return None  # a commit is being published right now
        return first

    def close(self) -> None:
        if self._header is not None:
            self._header.close()
            self._header = None
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None


# --- The caller and their settings, cached between commits -----------------------------------


class StoredSettings(NamedTuple):
    """A user_settings row as read on the hot path."""

    llm_model: str | None
    llm_temperature: float
    llm_max_tokens: int
    updated_at: str | None
    revision: int


# One indexed query (unique index user_token_hash) that also brings the user's settings row:
# the chat agent reads its settings before every LLM call, so that read costs no second query.
_USER_BY_TOKEN_HASH = PreparedQuery(
    lambda: (
        User.select(
            User.id,
            User.name,
            User.token_hash,
            User.role,
            User.disabled,
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
    role: str
    settings: StoredSettings | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _query_user(reader: PointReader | PooledPointReader, digest: str) -> AuthenticatedUser | None:
    """The enabled user whose stored token hash is ``digest``, or None: one query on the unique
    index (so its timing says nothing about the token); the final comparison is constant-time
    anyway."""
    row = reader.fetchone(_USER_BY_TOKEN_HASH, token_hash=digest)
    if row is None or not digests_match(digest, row[2]) or row[4]:
        return None
    settings = None if row[9] is None else StoredSettings(*row[5:10])
    return AuthenticatedUser(id=row[0], name=row[1], role=row[3], settings=settings)


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

    def __init__(
        self,
        reader: PointReader | PooledPointReader,
        stamp: CommitStamp,
        max_entries: int = 4096,
    ) -> None:
        self._reader = reader
        self._stamp = stamp
        self._max_entries = max_entries
        self._cached: dict[str, AuthenticatedUser] = {}
        self._cached_at: bytes | None = None

    def user_for_token(self, token: str) -> AuthenticatedUser | None:
        """The user whose token this is, or None."""
        if not TOKEN_RE.match(token):
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


# --- The response, the header, the route table, the heap --------------------------------------


@lru_cache(maxsize=4096)
def settings_json(
    stored: StoredSettings, local_model: str | None, unavailable_reason: str | None = None
) -> bytes:
    """The JSON body of ``GET /api/user-settings/`` for a stored row.

    A pure function of the row (every column, revision included) and the host's local model,
    so it is memoised: the hot read then costs no model validation and no serialisation.
    """
    return SettingsOut.of(stored, local_model, unavailable_reason).model_dump_json().encode()


def bearer_token(scope: Scope) -> str | None:
    """The bearer token of the request, straight from the ASGI scope (no Headers object, no
    fastapi.security dependency node: each costs more than the cached lookup)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def flat_routes(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Put the routers' routes, in order, ahead of the app's own (the OpenAPI documents).

    Routes are matched in order, one by one: the hot routes come first, the documents (rare)
    last. The routes are added to the app's own table rather than through include_router():
    FastAPI 0.165 keeps an included router as a nested router that is matched twice per
    request, which cost more than the settings query itself. The routers carry their prefix
    and tags on the routes and have no router-level dependencies, so nothing is lost.
    """
    docs = list(app.router.routes)
    app.router.routes[:] = [route for router in routers for route in router.routes] + docs


def freeze_startup_heap() -> None:
    """Everything built so far (routes, schemas, pydantic validators) lives as long as the
    process: keep it out of the cyclic GC's full collections, which would otherwise walk it
    again and again under load. Call once, when startup is complete."""
    gc.freeze()
