"""Schema migrations keep data; nova-settings-admin is idempotent and never prints a token."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import stat
import subprocess
import sys

from .conftest import LOCAL_MODEL, ROOT, run_service

# The version-1 schema as it shipped (kept here verbatim, independent of the code under test).
V1_SCHEMA = """
CREATE TABLE "user" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL UNIQUE,
    "token_hash" TEXT NOT NULL
);
CREATE TABLE "user_settings" (
    "user_id" INTEGER NOT NULL PRIMARY KEY REFERENCES "user" ("id") ON DELETE CASCADE,
    "llm_model" TEXT,
    "llm_temperature" REAL NOT NULL,
    "llm_max_tokens" INTEGER NOT NULL
);
PRAGMA user_version = 1;
"""
OLD_TOKEN = "old-token-from-v1-0123456789abcdefghijklmnop"


def _admin(env, *args):
    out = subprocess.run(
        [sys.executable, "-m", "nova_settings.admin", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out


def _env(state_dir):
    import os

    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "services"),
        "NOVA_SETTINGS_STATE_DIR": str(state_dir),
        "NOVA_LOCAL_MODEL": LOCAL_MODEL,
    }


def test_migration_from_v1_keeps_data(tmp_path, upstreams):
    state = tmp_path / "state"
    state.mkdir()
    db = state / "settings.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute(
            'INSERT INTO "user" (id, name, token_hash) VALUES (1, ?, ?)',
            ("alice", hashlib.sha256(OLD_TOKEN.encode()).hexdigest()),
        )
        conn.execute("INSERT INTO user_settings VALUES (1, 'gemini-2.5-flash', 1.25, 777)")
        conn.commit()

    out = _admin(_env(state), "migrate")
    assert json.loads(out.stdout) == {"changed": True, "from_version": 1, "to_version": 4}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # The one user a host had before roles (the playbook's) is its admin.
        assert conn.execute('SELECT role, disabled FROM "user"').fetchall() == [("admin", 0)]
        assert conn.execute(
            "SELECT llm_model, llm_temperature, llm_max_tokens, revision FROM user_settings"
        ).fetchall() == [("gemini-2.5-flash", 1.25, 777, 0)]
        indexes = {row[1] for row in conn.execute('PRAGMA index_list("user")')}
        assert "user_token_hash" in indexes
    again = _admin(_env(state), "migrate")
    assert json.loads(again.stdout)["changed"] is False

    # The v1 user's token still works against the service, and its settings are intact.
    with run_service(state, upstreams, user="bootstrap") as svc, svc.client(OLD_TOKEN) as c:
        body = c.get("/api/user-settings/").json()
    assert (body["llm_model"], body["llm_temperature"], body["llm_max_tokens"]) == (
        "gemini-2.5-flash",
        1.25,
        777,
    )


def test_service_refuses_a_newer_schema(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    with contextlib.closing(sqlite3.connect(state / "settings.db")) as conn:
        conn.execute("PRAGMA user_version = 99")
    out = subprocess.run(
        [sys.executable, "-m", "nova_settings.admin", "migrate"],
        env=_env(state),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode != 0
    assert "newer" in out.stderr


def test_ensure_user_is_idempotent_and_quiet(tmp_path):
    state = tmp_path / "state"
    token_file = tmp_path / "tokens" / "admin.token"
    first = _admin(_env(state), "ensure-user", "admin", "--token-file", str(token_file))
    assert json.loads(first.stdout) == {"changed": True}
    token = token_file.read_text().strip()
    assert len(token) >= 43
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token not in first.stdout + first.stderr
    second = _admin(_env(state), "ensure-user", "admin", "--token-file", str(token_file))
    assert json.loads(second.stdout) == {"changed": False}
    assert token_file.read_text().strip() == token
    with contextlib.closing(sqlite3.connect(state / "settings.db")) as conn:
        (stored,) = conn.execute(
            'SELECT token_hash FROM "user" WHERE name = ?', ("admin",)
        ).fetchone()
        assert stored == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (state / "settings.db").read_bytes().decode("latin-1")
        settings = conn.execute(
            "SELECT llm_model, llm_temperature, llm_max_tokens FROM user_settings"
        ).fetchall()
    assert settings == [(LOCAL_MODEL, 0.6, 2048)]
    token_file.unlink()
    third = _admin(_env(state), "ensure-user", "admin", "--token-file", str(token_file))
    assert json.loads(third.stdout) == {"changed": True}
    assert token_file.read_text().strip() != token
