"""A throwaway Postgres cluster for the settings tests: Debian's postgresql, as a host has it.

One cluster per test session, in a temporary directory, on a free loopback port. Like a host's
(issue: "Postgres with scram and its own role"): ``password_encryption = scram-sha-256``, and a
pg_hba that lets the role ``nova_settings`` in over TCP with its SCRAM password only, and
nobody else (the superuser only over the cluster's own socket, to make databases). Every
settings service the tests start gets a database of its own, owned by ``nova_settings``.

Postgres refuses to run as root: as root, the cluster runs as the ``postgres`` system user
(which Debian's package creates) and its directory is that user's.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from nova_common.ports import free_port

ROLE = "nova_settings"


def find_bindir() -> Path | None:
    """The newest installed server's binaries (Debian: /usr/lib/postgresql/VERSION/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    return Path(found[-1]).parent if found else None


@dataclass
class PgCluster:
    bindir: Path
    base: Path  # data/, the socket, the log, the role's password file
    port: int
    password: str
    run_as: list[str]  # runuser prefix when root
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def password_file(self) -> Path:
        return self.base / "nova_settings.password"

    @classmethod
    def start(cls, bindir: Path) -> PgCluster:
        run_as: list[str] = []
        base = Path(tempfile.mkdtemp(prefix="nova-pg-"))
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(base, pg.pw_uid, pg.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        base.chmod(0o755)  # the socket is reached by the tests' own user
        cluster = cls(bindir, base, free_port(), secrets.token_urlsafe(24), run_as)
        cluster._init()
        return cluster

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def _init(self) -> None:
        self._pg(
            "initdb", "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
        )  # fmt: skip
        conf = (
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.base}'\n"
            "password_encryption = 'scram-sha-256'\n"
            "max_connections = 300\n"
            # Throwaway data: no crash safety needed, and the test host has 2 cores.
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
        hba = (
            "local all postgres trust\n"
            f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 0.0.0.0/0 reject\n"
        )
        # Written through the tool user (the files are theirs); the values are ours.
        for name, text in (("postgresql.auto.conf", conf), ("pg_hba.conf", hba)):
            subprocess.run(
                [*self.run_as, "tee", str(self.data / name)],
                input=text.encode(),
                check=True,
                capture_output=True,
            )
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"), "-w", "start")
        with contextlib.closing(self.superuser()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", (self.password,))
            cur.execute(f"CREATE DATABASE {ROLE} OWNER {ROLE}")
        with open(os.open(self.password_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(self.password + "\n")

    def superuser(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        conn = psycopg2.connect(host=str(self.base), port=self.port, user="postgres", dbname=dbname)
        conn.autocommit = True
        return conn

    def new_database(self) -> str:
        """A fresh, empty database owned by the role."""
        name = f"{ROLE}_{next(self._names)}"
        with contextlib.closing(self.superuser()) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def url(self, dbname: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str) -> psycopg2.extensions.connection:
        """As the service does: the role, over TCP, with its password."""
        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=ROLE, dbname=dbname, password=self.password
        )

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """A throwaway cluster for a test session or module; fails the test when Debian's server is
    not installed (scripts/test installs it)."""
    import pytest

    bindir = find_bindir()
    if bindir is None:
        pytest.fail("Postgres is not installed (/usr/lib/postgresql/*/bin): run scripts/test")
    cluster = PgCluster.start(bindir)
    try:
        yield cluster
    finally:
        cluster.stop()
