"""The hot-path user cache: served from memory, but never one commit behind.

These run against real SQLite files. Writers are other connections, other threads and another
process (the sqlite3 CLI's stand-in: a Python subprocess), the way nova-settings-admin and an
operator's shell change the database behind the service's back.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nova_settings.core import security
from nova_settings.core.db import migrate, open_database
from nova_settings.fast_read import CommitStamp, PointReader, UserLookup


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "settings.db"
    db = open_database(path)
    with db.connection_context():
        migrate(db)
    db.close_all()
    return path


def _add_user(path: Path, name: str, token: str, temperature: float = 0.6) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        cur = conn.execute(
            'INSERT INTO "user" (name, token_hash) VALUES (?, ?)',
            (name, security.hash_token(token)),
        )
        conn.execute(
            "INSERT INTO user_settings (user_id, llm_model, llm_temperature, llm_max_tokens,"
            " updated_at, revision) VALUES (?, NULL, ?, 2048, NULL, 0)",
            (cur.lastrowid, temperature),
        )
        return int(cur.lastrowid)


@pytest.fixture
def lookup(db_path: Path):
    reader = PointReader(db_path)
    stamp = CommitStamp.open(db_path)
    assert stamp.enabled
    yield UserLookup(reader, stamp)
    reader.close_all()
    stamp.close()


TOKEN = "t" * 43


def test_stamp_moves_on_every_commit_and_only_then(db_path):
    stamp = CommitStamp.open(db_path)
    try:
        before = stamp.read()
        assert before is not None
        assert stamp.read() == before  # reads change nothing
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            conn.execute('SELECT * FROM "user"').fetchall()
            assert stamp.read() == before
            seen = {before}
            for i in range(50):
                with conn:
                    conn.execute('INSERT INTO "user" (name, token_hash) VALUES (?, ?)', (i, i))
                seen.add(stamp.read())
        assert len(seen) == 51  # a new stamp for each of the 50 commits
    finally:
        stamp.close()


def test_stamp_moves_on_a_commit_by_another_process(db_path):
    stamp = CommitStamp.open(db_path)
    try:
        before = stamp.read()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                "c.execute('INSERT INTO \"user\" (name, token_hash) VALUES (1, 1)'); c.commit()",
                str(db_path),
            ],
            check=True,
        )
        assert stamp.read() != before
    finally:
        stamp.close()


def test_stamp_is_unknown_without_wal(tmp_path):
    path = tmp_path / "rollback-journal.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x)")
    stamp = CommitStamp.open(path)
    assert not stamp.enabled
    assert stamp.read() is None
    stamp.close()


def test_a_torn_header_reads_as_unknown():
    header = bytes(48) + b"\x01" + bytes(47)  # the two copies differ: a commit mid-publish
    assert CommitStamp(None, header).read() is None  # type: ignore[arg-type]
    assert CommitStamp(None, bytes(96)).read() == bytes(48)  # type: ignore[arg-type]


def test_every_change_by_another_connection_is_seen_by_the_next_lookup(db_path, lookup):
    _add_user(db_path, "alice", TOKEN)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        for revision in range(1, 201):
            first = lookup.user_for_token(TOKEN)
            assert lookup.user_for_token(TOKEN) is first  # served from memory meanwhile
            with conn:
                conn.execute("UPDATE user_settings SET revision = ?", (revision,))
            assert lookup.user_for_token(TOKEN).settings.revision == revision


def test_a_replaced_or_deleted_token_stops_working_on_the_next_lookup(db_path, lookup):
    user_id = _add_user(db_path, "bob", TOKEN)
    assert lookup.user_for_token(TOKEN).name == "bob"
    new = "n" * 43
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute(
            'UPDATE "user" SET token_hash = ? WHERE id = ?', (security.hash_token(new), user_id)
        )
    assert lookup.user_for_token(TOKEN) is None
    assert lookup.user_for_token(new).name == "bob"
    with contextlib.closing(sqlite3.connect(db_path)) as conn, conn:
        conn.execute("PRAGMA foreign_keys = 1")
        conn.execute('DELETE FROM "user" WHERE id = ?', (user_id,))
    assert lookup.user_for_token(new) is None


def test_lookups_never_go_back_in_time_under_a_concurrent_writer(db_path, lookup):
    """A writer thread commits revisions 1..N while lookups run: each lookup sees a revision
    at least as new as the last one committed before it started, and the last sees N."""
    _add_user(db_path, "carol", TOKEN)
    committed = [0]
    done = threading.Event()

    def writer() -> None:
        with contextlib.closing(sqlite3.connect(db_path)) as conn:
            for revision in range(1, 301):
                with conn:
                    conn.execute("UPDATE user_settings SET revision = ?", (revision,))
                committed[0] = revision
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    lookups = 0
    while not done.is_set():
        floor = committed[0]
        assert lookup.user_for_token(TOKEN).settings.revision >= floor
        lookups += 1
    thread.join()
    assert lookup.user_for_token(TOKEN).settings.revision == 300
    assert lookups > 0


def test_unknown_and_malformed_tokens_are_refused(db_path, lookup):
    _add_user(db_path, "dave", TOKEN)
    assert lookup.user_for_token("u" * 43) is None
    assert lookup.user_for_token("' OR 1=1 --") is None
    assert lookup.user_for_token(TOKEN).name == "dave"
