"""Role nova_postgres' role script (files/nova-postgres-ensure-role) on a real Postgres server:
it makes the login role and its database, with the password from stdin stored as a SCRAM
verifier; a second run changes nothing; a new password replaces the old one."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.nova_settings.postgres import PgCluster, running_cluster

SCRIPT = (
    Path(__file__).resolve().parents[2]
    / "ansible/roles/nova_postgres/files/nova-postgres-ensure-role"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with running_cluster() as started:
        yield started


def ensure(cluster: PgCluster, password: str, role: str = "gw_role") -> dict:
    """Run the script as the role's tasks do: as postgres, the password on stdin, under the
    system python3 (its shebang; Debian's python3-psycopg2)."""
    out = subprocess.run(
        [*cluster.run_as, "/usr/bin/python3", str(SCRIPT), f"--port={cluster.port}",
         f"--role={role}", f"--database={role}_db", f"--socket-dir={cluster.base}"],
        input=password + "\n", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout + out.stderr
    return json.loads(out.stdout)


def can_log_in(cluster: PgCluster, password: str, role: str = "gw_role") -> bool:
    try:
        conn = psycopg2.connect(
            host="127.0.0.1", port=cluster.port, user=role, dbname=f"{role}_db", password=password
        )
    except psycopg2.OperationalError:
        return False
    conn.close()
    return True


def test_makes_the_role_and_its_database_and_a_rerun_changes_nothing(cluster: PgCluster) -> None:
    # The throwaway cluster's pg_hba admits only its own role: let this one in the same way.
    with contextlib.closing(cluster.superuser()) as conn, conn.cursor() as cur:
        cur.execute("SHOW hba_file")
        (hba,) = cur.fetchone()
    subprocess.run(
        [*cluster.run_as, "sed", "-i",
         r"1i host gw_role_db gw_role 127.0.0.1/32 scram-sha-256", hba],
        check=True, timeout=30,
    )  # fmt: skip
    with contextlib.closing(cluster.superuser()) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_reload_conf()")
    assert ensure(cluster, "first-password-0123") == {"changed": True}
    assert ensure(cluster, "first-password-0123") == {"changed": False}
    with contextlib.closing(cluster.superuser()) as conn, conn.cursor() as cur:
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'gw_role'")
        assert cur.fetchone()[0].startswith("SCRAM-SHA-256$4096:")
        cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'gw_role_db'")
        assert cur.fetchone()[0] == "gw_role"
    assert can_log_in(cluster, "first-password-0123")
    # A new password (the file replaced): the old one stops working.
    assert ensure(cluster, "second-password-4567") == {"changed": True}
    assert can_log_in(cluster, "second-password-4567")
    assert not can_log_in(cluster, "first-password-0123")
    assert ensure(cluster, "second-password-4567") == {"changed": False}
