"""The SQLite database: the connection pool, and the schema migrations.

The peewee models live in ``models.py``; the hot read path's own connections in
``fast_read.py``.

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
from pathlib import Path

import peewee
from playhouse.pool import PooledSqliteDatabase

from ..models import MODELS

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
    3: (
        # Users through the gateway: roles, a gateway key (its hash), disabling, a daily token
        # budget, and usage per user, day and model (user_id 0: the master key, no user).
        'ALTER TABLE "user" ADD COLUMN "role" TEXT NOT NULL DEFAULT \'user\'',
        'ALTER TABLE "user" ADD COLUMN "disabled" INTEGER NOT NULL DEFAULT 0',
        'ALTER TABLE "user" ADD COLUMN "gateway_key_hash" TEXT',
        'ALTER TABLE "user" ADD COLUMN "daily_token_budget" INTEGER',
        'CREATE UNIQUE INDEX "user_gateway_key_hash" ON "user" ("gateway_key_hash")',
        # Hosts provisioned before roles had one user, made by the playbook: the admin.
        'UPDATE "user" SET "role" = \'admin\' WHERE "id" = (SELECT min("id") FROM "user")',
        """CREATE TABLE "usage" (
            "user_id" INTEGER NOT NULL,
            "day" TEXT NOT NULL,
            "model" TEXT NOT NULL,
            "requests" INTEGER NOT NULL DEFAULT 0,
            "errors" INTEGER NOT NULL DEFAULT 0,
            "prompt_tokens" INTEGER NOT NULL DEFAULT 0,
            "completion_tokens" INTEGER NOT NULL DEFAULT 0,
            "cost" REAL NOT NULL DEFAULT 0,
            PRIMARY KEY ("user_id", "day", "model")
        )""",
    ),
    4: (
        # Sessions of the settings page (web/): the cookie's sha256, its CSRF token, the hash of
        # its Try-it gateway key, expiry.
        """CREATE TABLE "web_session" (
            "id_hash" TEXT NOT NULL PRIMARY KEY,
            "user_id" INTEGER NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
            "csrf_token" TEXT NOT NULL,
            "try_key_hash" TEXT UNIQUE,
            "created_at" TEXT NOT NULL,
            "expires_at" TEXT NOT NULL
        )""",
        'CREATE INDEX "web_session_user_id" ON "web_session" ("user_id")',
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
