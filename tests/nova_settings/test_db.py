"""The database layer in-process: pragmas on pooled connections, migrations, context scopes."""

from __future__ import annotations

import threading

from nova_settings.core.db import SCHEMA_VERSION, migrate, open_database, schema_version


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


def test_migrate_is_idempotent(tmp_path):
    db = open_database(tmp_path / "settings.db")
    with db.connection_context():
        assert migrate(db) == (0, SCHEMA_VERSION)
        assert migrate(db) == (SCHEMA_VERSION, SCHEMA_VERSION)
        assert schema_version(db) == SCHEMA_VERSION
    db.close_all()


def test_scopes_in_different_threads_get_different_connections(tmp_path):
    db = open_database(tmp_path / "settings.db")
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
