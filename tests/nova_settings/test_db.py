"""The database layer in-process: pragmas on pooled connections, migrations, context scopes
(on both backends but for SQLite's pragmas)."""

from __future__ import annotations

import threading

import pytest

from nova_settings.core.config import Config
from nova_settings.core.db import SCHEMA_VERSION, migrate, open_database, schema_version
from nova_settings.models import User


@pytest.fixture
def config(tmp_path, backend) -> Config:
    env = backend.database_env()
    return Config(
        NOVA_SETTINGS_STATE_DIR=str(tmp_path),
        NOVA_SETTINGS_DATABASE_URL=env.get("NOVA_SETTINGS_DATABASE_URL"),
        NOVA_SETTINGS_DATABASE_PASSWORD_FILE=env.get("NOVA_SETTINGS_DATABASE_PASSWORD_FILE"),
    )


def test_pragmas_hold_on_every_pooled_checkout(tmp_path):
    db = open_database(tmp_path / "settings.db")
    for _ in range(3):  # new connection, then reused ones from the pool
        db.begin_scope()
        db.connect()
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        db.close()
    db.close_all()


def test_migrate_is_idempotent(config):
    db = open_database(config)
    with db.connection_context():
        assert migrate(db) == (0, SCHEMA_VERSION)
        assert migrate(db) == (SCHEMA_VERSION, SCHEMA_VERSION)
        assert schema_version(db) == SCHEMA_VERSION
    db.close_all()


def test_scopes_in_different_threads_get_different_connections(config):
    db = open_database(config)
    seen = []

    def work():
        db.begin_scope()
        db.connect()
        seen.append(id(db.connection()))
        barrier.wait()
        db.close()

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 2
    db.close_all()


def test_immediate_transactions_serialise_read_modify_writes(config):
    """atomic("IMMEDIATE") admits one writer at a time on both backends (Postgres: an advisory
    lock), so increments read and written in Python are never lost."""
    db = open_database(config)
    with db.connection_context():
        migrate(db)
        User.create(name="counter", token_hash="h", daily_token_budget=0)

    def work() -> None:
        db.begin_scope()
        with db.connection_context():
            for _ in range(25):
                with db.atomic("IMMEDIATE"):
                    user = User.get(User.name == "counter")
                    user.daily_token_budget += 1
                    user.save()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.connection_context():
        assert User.get(User.name == "counter").daily_token_budget == 100
    db.close_all()
