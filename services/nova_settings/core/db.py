"""The settings database, SQLite or Postgres: the connection pool, and the schema migrations.

The peewee models live in ``models.py``; the hot read path's own connections in
``fast_read.py``.

SQLite (a file in the state dir) is the single-host default. With ``NOVA_SETTINGS_DATABASE_URL``
set the service uses Postgres instead, through the same models and migrations; the password
comes from a file (``NOVA_SETTINGS_DATABASE_PASSWORD_FILE``, a systemd credential).

The schema is created and upgraded by numbered migrations; the version reached is recorded in
the same transaction as the migration (SQLite: ``PRAGMA user_version``; Postgres: the one-row
table ``nova_schema_version``), so an upgrade either lands whole or not at all and existing
rows are kept.

Connections come from a pool and peewee's per-connection state lives in a ``ContextVar``
instead of a thread-local. FastAPI runs dependencies and endpoints on the event loop or in
threadpool threads; with the context-bound state they all see the one connection that the
request checked out.

Writers serialise on both backends: ``db.atomic("IMMEDIATE")`` is SQLite's ``BEGIN
IMMEDIATE``, and on Postgres a transaction that first takes a transaction-scoped advisory lock,
so a read-modify-write (a settings revision, a usage counter) is never lost.
"""

from __future__ import annotations

import contextvars
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from nova_common.credentials import read_secret

from ..models import MODELS
from .config import Config

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# Per-connection pragmas. journal_mode=wal is persistent in the file and is set once by
# open_database() (setting it on every checkout would take a lock on the event loop).
CONNECTION_PRAGMAS = (
    ("busy_timeout", BUSY_TIMEOUT_MS),
    ("foreign_keys", 1),
    ("synchronous", "normal"),
)
# Transaction-scoped advisory lock keys (pg_advisory_xact_lock): one for every writer (what
# BEGIN IMMEDIATE is on SQLite), one for migrations. Arbitrary constants, fixed forever.
WRITE_LOCK_KEY = 0x6E6F7661_0001
MIGRATION_LOCK_KEY = 0x6E6F7661_0002
# The one-row table that holds Postgres' schema version (SQLite's is PRAGMA user_version).
VERSION_TABLE = "nova_schema_version"


class DatabaseConfigError(ValueError):
    """The database cannot be opened as configured (said at start, never a traceback)."""


class _Connection(sqlite3.Connection):
    """sqlite3 connection that remembers it has been set up (pragmas, functions)."""

    nova_ready = False


class Database(peewee.Database):
    """What both backends share: pooled connections whose state is bound to the context.

    A mixin: the concrete classes are ``SqliteDatabase`` and ``PostgresDatabase``.
    """

    backend: ClassVar[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._state_var: contextvars.ContextVar[peewee._ConnectionState | None] = (
            contextvars.ContextVar(f"nova_settings_db_state_{id(self)}", default=None)
        )
        super().__init__(*args, **kwargs)

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

    @contextmanager
    def connected(self) -> Iterator[None]:
        """Use the caller's connection if it has one (a request's), else one for this block."""
        if not self.is_closed():
            yield
            return
        with self.connection_context():
            yield

    def schema_version(self) -> int:
        raise NotImplementedError

    def set_schema_version(self, version: int) -> None:
        """Record ``version``; call inside the migration's transaction."""
        raise NotImplementedError

    def lock_migrations(self) -> None:
        """Make concurrent migrators (other processes, other hosts) wait for this transaction."""
        raise NotImplementedError


class SqliteDatabase(Database, PooledSqliteDatabase):
    """The settings database in one SQLite file (the default)."""

    backend = "sqlite"

    def __init__(self, path: Path | str, max_connections: int = 128) -> None:
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

    def _initialize_connection(self, conn: sqlite3.Connection) -> None:
        # peewee re-applies the pragmas on every checkout from the pool; they are
        # per-connection settings, so once per new connection is enough.
        if getattr(conn, "nova_ready", False):
            return
        super()._initialize_connection(conn)
        if isinstance(conn, _Connection):
            conn.nova_ready = True

    def schema_version(self) -> int:
        return int(self.execute_sql("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, version: int) -> None:
        self.execute_sql(f"PRAGMA user_version = {int(version)}")

    def lock_migrations(self) -> None:
        """BEGIN IMMEDIATE (the migration's transaction) has taken SQLite's write lock."""


class PostgresDatabase(Database, PooledPostgresqlDatabase):
    """The settings database on a Postgres server (NOVA_SETTINGS_DATABASE_URL)."""

    backend = "postgres"

    def __init__(self, database: str, max_connections: int, **connect_params: Any) -> None:
        super().__init__(
            database,
            max_connections=max_connections,
            stale_timeout=600,
            timeout=10,
            autoconnect=False,
            **connect_params,
        )

    def begin(self, lock_type: str | None = None) -> None:  # type: ignore[override]
        """``atomic("IMMEDIATE")``, as on SQLite: one writer at a time. A plain transaction
        (READ COMMITTED) that first takes the writers' advisory lock, released at its end."""
        super().begin()
        if lock_type == "IMMEDIATE":
            self.execute_sql("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
        elif lock_type is not None:
            raise ValueError(f"unknown transaction lock type {lock_type!r}")

    def schema_version(self) -> int:
        # pg_tables is read under this statement's snapshot, so it sees a table that a
        # migrator committed while this one waited for the lock (to_regclass() would not: it
        # answers from this backend's catalog cache, which takes no lock and so no news).
        (tables,) = self.execute_sql(
            "SELECT count(*) FROM pg_catalog.pg_tables"
            " WHERE schemaname = current_schema() AND tablename = %s",
            (VERSION_TABLE,),
        ).fetchone()
        if not tables:  # a new database: nothing migrated yet
            return 0
        row = self.execute_sql('SELECT "version" FROM "nova_schema_version"').fetchone()
        return int(row[0]) if row else 0

    def set_schema_version(self, version: int) -> None:
        self.execute_sql(
            'CREATE TABLE IF NOT EXISTS "nova_schema_version" ("version" INTEGER NOT NULL)'
        )
        self.execute_sql('DELETE FROM "nova_schema_version"')
        self.execute_sql('INSERT INTO "nova_schema_version" ("version") VALUES (%s)', (version,))

    def lock_migrations(self) -> None:
        self.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))


# The column types that differ. SQLite's INTEGER PRIMARY KEY numbers new rows itself, its
# INTEGER holds 64 bits and its REAL is a double; Postgres needs an identity column, BIGINT,
# DOUBLE PRECISION (its REAL is 4 bytes: 0.6 would read back as 0.6000000238) and a BOOLEAN
# (psycopg2 sends Python's bools as booleans, which an INTEGER column refuses).
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {
        "pk": "INTEGER NOT NULL PRIMARY KEY",
        "real": "REAL",
        "bigint": "INTEGER",
        "bool": "INTEGER",
        "false": "0",
    },
    "postgres": {
        "pk": "INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "false": "false",
    },
}

# Migration N brings the schema from version N-1 to N. Never edit a shipped migration:
# append a new one. The {names} are the column types that differ between the backends
# (COLUMN_TYPES); formatted for SQLite each statement is the text that shipped.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE "user" (
            "id" {pk},
            "name" TEXT NOT NULL UNIQUE,
            "token_hash" TEXT NOT NULL
        )""",
        """CREATE TABLE "user_settings" (
            "user_id" INTEGER NOT NULL PRIMARY KEY
                REFERENCES "user" ("id") ON DELETE CASCADE,
            "llm_model" TEXT,
            "llm_temperature" {real} NOT NULL,
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
        'ALTER TABLE "user" ADD COLUMN "disabled" {bool} NOT NULL DEFAULT {false}',
        'ALTER TABLE "user" ADD COLUMN "gateway_key_hash" TEXT',
        'ALTER TABLE "user" ADD COLUMN "daily_token_budget" INTEGER',
        'CREATE UNIQUE INDEX "user_gateway_key_hash" ON "user" ("gateway_key_hash")',
        # Hosts provisioned before roles had one user, made by the playbook: the admin.
        'UPDATE "user" SET "role" = \'admin\' WHERE "id" = (SELECT min("id") FROM "user")',
        """CREATE TABLE "usage" (
            "user_id" INTEGER NOT NULL,
            "day" TEXT NOT NULL,
            "model" TEXT NOT NULL,
            "requests" {bigint} NOT NULL DEFAULT 0,
            "errors" {bigint} NOT NULL DEFAULT 0,
            "prompt_tokens" {bigint} NOT NULL DEFAULT 0,
            "completion_tokens" {bigint} NOT NULL DEFAULT 0,
            "cost" {real} NOT NULL DEFAULT 0,
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


def migration_statements(backend: str, version: int) -> list[str]:
    """Migration ``version``'s SQL for ``backend`` ("sqlite" or "postgres")."""
    return [statement.format_map(COLUMN_TYPES[backend]) for statement in MIGRATIONS[version]]


def schema_version(db: Database) -> int:
    return db.schema_version()


def migrate(db: Database) -> tuple[int, int]:
    """Bring the schema up to SCHEMA_VERSION. Returns (version before, version after).

    Must be called with a connection open. Each migration runs in its own transaction together
    with the version bump, so a failed migration leaves the previous version intact, and holds
    the migration lock (SQLite: BEGIN IMMEDIATE; Postgres: an advisory lock), so concurrent
    migrators, on this host or others, serialise and each migration runs once.
    """
    before = db.schema_version()
    if before > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"database schema version {before} is newer than this program ({SCHEMA_VERSION})"
        )
    current = before
    for version in sorted(v for v in MIGRATIONS if v > before):
        with db.atomic("IMMEDIATE"):
            db.lock_migrations()
            current = db.schema_version()  # another process may have migrated meanwhile
            if current >= version:
                continue
            for statement in migration_statements(db.backend, version):
                db.execute_sql(statement)
            db.set_schema_version(version)
            current = version
        log.info("database schema migrated to version %d", version)
    return before, current


def postgres_params(config: Config) -> tuple[str, dict[str, Any]]:
    """The database name and psycopg2's connection parameters for ``config``'s URL (validated
    by Config: no password in it), the password read from its file."""
    assert config.database_url is not None
    url = urlsplit(config.database_url)
    params: dict[str, Any] = dict(parse_qsl(url.query))  # e.g. sslmode=verify-full
    params.update(host=url.hostname, port=url.port or 5432, user=unquote(url.username or ""))
    password_path = config.database_password_path()
    if password_path is not None:
        password = read_secret(password_path)
        if password is None:
            raise DatabaseConfigError(
                f"the database password file {password_path} is missing, unreadable or empty"
            )
        params["password"] = password
    return unquote(url.path.lstrip("/")), params


def open_database(where: Config | Path) -> Database:
    """The settings database: Postgres when ``where`` is a Config with a database URL, else
    SQLite (the file ``where`` or the config's state dir), switched to WAL. Binds the models."""
    db: Database
    if isinstance(where, Config) and where.database_url is not None:
        name, params = postgres_params(where)
        db = PostgresDatabase(name, where.database_pool_size, **params)
        db.bind(MODELS, bind_refs=False, bind_backrefs=False)
        return db
    path = where.db_path if isinstance(where, Config) else where
    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(path)
    db.bind(MODELS, bind_refs=False, bind_backrefs=False)
    with db.connection_context():
        mode = db.execute_sql("PRAGMA journal_mode=wal").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite refused WAL journal mode (got %s)", mode)
    return db
