"""SQLite storage: the peewee database, its models and the schema migrations.

The schema is created and upgraded by numbered migrations; the version reached is recorded in
``PRAGMA user_version`` in the same transaction as the migration, so an upgrade either lands
whole or not at all and existing rows are kept.

Connections come from a pool (``PooledSqliteDatabase`` is a ``SqliteDatabase``) and peewee's
per-connection state lives in a ``ContextVar`` instead of a thread-local. FastAPI runs
dependencies and endpoints on the event loop or in threadpool threads; with the context-bound
state they all see the one connection that the request checked out.
"""

from __future__ import annotations

import contextvars
import logging
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peewee
from playhouse.pool import PooledSqliteDatabase

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# Per-connection pragmas. journal_mode=wal is persistent in the file and is set once by
# open_database() (setting it on every checkout would take a lock on the event loop).
CONNECTION_PRAGMAS = (
    ("busy_timeout", BUSY_TIMEOUT_MS),
    ("foreign_keys", 1),
    ("synchronous", "normal"),
)


class _Connection(sqlite3.Connection):
    """sqlite3 connection that remembers it has been set up (pragmas, functions)."""

    nova_ready = False


class Database(PooledSqliteDatabase):
    """The settings database: pooled SQLite connections with context-bound state."""

    def __init__(self, path: Path | str, max_connections: int = 128) -> None:
        self._state_var: contextvars.ContextVar[peewee._ConnectionState | None] = (
            contextvars.ContextVar(f"nova_settings_db_state_{id(self)}", default=None)
        )
        super().__init__(
            str(path),
            pragmas=CONNECTION_PRAGMAS,
            max_connections=max_connections,
            stale_timeout=600,
            timeout=10,  # wait up to 10 s for a free pooled connection
            autoconnect=False,
            check_same_thread=False,  # a pooled connection serves one thread at a time
            factory=_Connection,
        )

    # peewee keeps the connection in ``self._state`` (a thread-local by default). Here it lives
    # in a ContextVar: ``begin_scope()`` (run by DbScopeMiddleware on the event loop) gives
    # each request its own state object, and threadpool calls made by the request run in a
    # copy of its context, so they share that object and thus the request's connection.
    @property
    def _state(self) -> peewee._ConnectionState:
        state = self._state_var.get()
        if state is None:  # outside a request (CLI, startup): one state per context
            state = peewee._ConnectionState()
            self._state_var.set(state)
        return state

    @_state.setter
    def _state(self, value: peewee._ConnectionState) -> None:
        """peewee's __init__ assigns a thread-local here; the ContextVar replaces it."""

    def begin_scope(self) -> None:
        """Start a fresh connection scope for the current context (one per request)."""
        self._state_var.set(peewee._ConnectionState())

    def _initialize_connection(self, conn: sqlite3.Connection) -> None:
        # peewee re-applies the pragmas on every checkout from the pool; they are
        # per-connection settings, so once per new connection is enough.
        if getattr(conn, "nova_ready", False):
            return
        super()._initialize_connection(conn)
        if isinstance(conn, _Connection):
            conn.nova_ready = True


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class BaseModel(peewee.Model):
    class Meta:
        database = None  # bound by open_database()
        legacy_table_names = False


class User(BaseModel):
    id = peewee.AutoField()
    name = peewee.TextField(unique=True)
    token_hash = peewee.TextField(unique=True)
    created_at = peewee.TextField(null=True)

    class Meta:
        table_name = "user"


class UserSettings(BaseModel):
    user = peewee.ForeignKeyField(
        User, primary_key=True, column_name="user_id", on_delete="CASCADE", backref="settings"
    )
    # NULL means "the host's local model" (NOVA_LOCAL_MODEL at read time).
    llm_model = peewee.TextField(null=True)
    llm_temperature = peewee.FloatField()
    llm_max_tokens = peewee.IntegerField()
    updated_at = peewee.TextField(null=True)
    revision = peewee.IntegerField(default=0)

    class Meta:
        table_name = "user_settings"


MODELS: list[type[peewee.Model]] = [User, UserSettings]

DEFAULT_TEMPERATURE = 0.6
DEFAULT_MAX_TOKENS = 2048

# Migration N brings the schema from version N-1 to N. Never edit a shipped migration:
# append a new one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE "user" (
            "id" INTEGER NOT NULL PRIMARY KEY,
            "name" TEXT NOT NULL UNIQUE,
            "token_hash" TEXT NOT NULL
        )""",
        """CREATE TABLE "user_settings" (
            "user_id" INTEGER NOT NULL PRIMARY KEY
                REFERENCES "user" ("id") ON DELETE CASCADE,
            "llm_model" TEXT,
            "llm_temperature" REAL NOT NULL,
            "llm_max_tokens" INTEGER NOT NULL
        )""",
    ),
    2: (
        # Token lookups become a single indexed query; timestamps and a revision counter.
        'CREATE UNIQUE INDEX "user_token_hash" ON "user" ("token_hash")',
        'ALTER TABLE "user" ADD COLUMN "created_at" TEXT',
        'ALTER TABLE "user_settings" ADD COLUMN "updated_at" TEXT',
        # Bumped by every write: gives writes a visible total order.
        'ALTER TABLE "user_settings" ADD COLUMN "revision" INTEGER NOT NULL DEFAULT 0',
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)


class SchemaTooNewError(RuntimeError):
    pass


def schema_version(db: peewee.Database) -> int:
    return int(db.execute_sql("PRAGMA user_version").fetchone()[0])


def migrate(db: Database) -> tuple[int, int]:
    """Bring the schema up to SCHEMA_VERSION. Returns (version before, version after).

    Must be called with a connection open. Each migration runs in its own BEGIN IMMEDIATE
    transaction together with the user_version bump, so concurrent migrators serialise and a
    failed migration leaves the previous version intact.
    """
    before = schema_version(db)
    if before > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"database schema version {before} is newer than this program ({SCHEMA_VERSION})"
        )
    current = before
    for version in sorted(v for v in MIGRATIONS if v > before):
        with db.atomic("IMMEDIATE"):
            current = schema_version(db)  # another process may have migrated meanwhile
            if current >= version:
                continue
            for statement in MIGRATIONS[version]:
                db.execute_sql(statement)
            db.execute_sql(f"PRAGMA user_version = {int(version)}")
            current = version
        log.info("database schema migrated to version %d", version)
    return before, current


def open_database(path: Path) -> Database:
    """Create the database object for ``path``, switch the file to WAL and bind the models."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(path)
    db.bind(MODELS, bind_refs=False, bind_backrefs=False)
    with db.connection_context():
        mode = db.execute_sql("PRAGMA journal_mode=wal").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite refused WAL journal mode (got %s)", mode)
    return db


def default_settings_row(user_id: int, local_model: str | None) -> dict[str, Any]:
    return {
        "user": user_id,
        "llm_model": local_model,
        "llm_temperature": DEFAULT_TEMPERATURE,
        "llm_max_tokens": DEFAULT_MAX_TOKENS,
        "updated_at": utcnow(),
        "revision": 0,
    }


class PreparedQuery:
    """SQL that peewee generates once and that is then run many times with new parameters.

    peewee builds the SQL text on every execution, which on the hot path (the token lookup)
    costs several times what SQLite takes to run the indexed query. Build the query with
    ``Param("name")`` placeholders; ``bind`` substitutes them by name.
    """

    def __init__(self, build: Any) -> None:
        self._build = build
        self._compiled: tuple[str, list[Any]] | None = None

    def bind(self, **values: Any) -> tuple[str, list[Any]]:
        if self._compiled is None:
            sql, params = self._build().sql()
            self._compiled = (sql, list(params))
        sql, params = self._compiled
        return sql, [values[p.name] if isinstance(p, _Placeholder) else p for p in params]


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
        sql, params = query.bind(**values)
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


class _Placeholder:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Param({self.name!r})"


def Param(name: str) -> peewee.Value:
    """A named placeholder for PreparedQuery (kept out of the field's type conversion)."""
    return peewee.Value(_Placeholder(name), converter=False)
