"""Fixtures: the settings service under real uvicorn on loopback, with stand-in upstreams.

One service per database backend (and one set of stand-ins) per test session; tests that change
a stand-in's mode put it back. ``run_service`` starts further instances for tests that need
their own DB.

Every test that uses ``backend`` (through ``service`` or a fixture of its own) runs twice: on
SQLite (a fresh file per service) and on Postgres (a real server, postgres.py: a fresh database
per service). ``Service.sql`` reads or changes a service's database on either.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nova_common.ports import free_port
from tests.standins.fake_gateway import FakeGateway, FakeLlamaServer
from tests.standins.google_api import GoogleApiStandin
from tests.standins.langsmith_api import LangSmithApiStandin

from .postgres import PgCluster, running_cluster

ROOT = Path(__file__).resolve().parents[2]

LOCAL_MODEL = "SmolLM2-135M-Instruct"
LOCAL_CTX = 8192
GOOGLE_KEY = "AIzaSyTESTKEY0123456789abcdefghij3xYz"
LANGSMITH_KEY = "lsv2_pt_0123456789abcdef0123456789abcdef_0a1b2c3d4e"
MASTER_KEY = "sk-nova-master-test-0123456789"
GATEWAY_MODELS = [LOCAL_MODEL, "gemini-2.5-flash", "mystery-model"]


@dataclass
class Upstreams:
    google: GoogleApiStandin
    langsmith: LangSmithApiStandin
    gateway: FakeGateway
    llama: FakeLlamaServer
    master_key_file: Path


@dataclass(frozen=True)
class Backend:
    """A database backend the suite runs on: "sqlite", or "postgres" with its cluster."""

    name: str
    cluster: PgCluster | None = None

    def database_env(self) -> dict[str, str]:
        """The environment that gives a new service a fresh database (SQLite: its state dir's
        file, nothing to set)."""
        if self.cluster is None:
            return {}
        return {
            "NOVA_SETTINGS_DATABASE_URL": self.cluster.url(self.cluster.new_database()),
            "NOVA_SETTINGS_DATABASE_PASSWORD_FILE": str(self.cluster.password_file),
        }

    def sql(self, env: dict[str, str], query: str, params: tuple = ()) -> list[tuple]:
        """Run ``query`` (``?`` placeholders) on the database ``env`` names, committed; its
        rows."""
        url = env.get("NOVA_SETTINGS_DATABASE_URL")
        if url is None:
            path = Path(env["NOVA_SETTINGS_STATE_DIR"]) / "settings.db"
            with contextlib.closing(sqlite3.connect(path)) as conn, conn:
                conn.execute("PRAGMA foreign_keys = 1")
                return conn.execute(query, params).fetchall()
        assert self.cluster is not None
        conn = self.cluster.connect(url.rsplit("/", 1)[1])
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query.replace("?", "%s"), params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


SQLITE = Backend("sqlite")


@dataclass
class Service:
    url: str
    token: str
    state_dir: Path
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes]
    backend: Backend = SQLITE

    @property
    def db_path(self) -> Path:
        return self.state_dir / "settings.db"

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Run ``query`` (``?`` placeholders) on this service's database; its rows."""
        return self.backend.sql(self.env, query, params)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20.0, trust_env=False)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def db_row(self, user: str = "alice") -> tuple:
        (row,) = self.sql(
            "SELECT s.llm_model, s.llm_temperature, s.llm_max_tokens, s.revision "
            'FROM user_settings s JOIN "user" u ON u.id = s.user_id WHERE u.name = ?',
            (user,),
        )
        return row

    def admin(self, *args: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "nova_settings.admin", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return json.loads(out.stdout)


def service_env(state_dir: Path, upstreams: Upstreams, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(
        PYTHONPATH=str(ROOT / "services"),
        NOVA_SETTINGS_HOST="127.0.0.1",
        NOVA_SETTINGS_PORT=str(port),
        NOVA_SETTINGS_STATE_DIR=str(state_dir),
        NOVA_LOCAL_MODEL=LOCAL_MODEL,
        NOVA_LLAMA_URL=upstreams.llama.root,
        NOVA_GATEWAY_URL=upstreams.gateway.root,
        NOVA_GATEWAY_KEY_FILE=str(upstreams.master_key_file),
        NOVA_GOOGLE_API_BASE=upstreams.google.base,
        NOVA_LANGSMITH_API_BASE=upstreams.langsmith.base,
        NOVA_PROVIDER_TIMEOUT_S="1",
        NOVA_DISCOVERY_TIMEOUT_S="5",
        NOVA_LOG_LEVEL="DEBUG",
    )
    env.pop("CREDENTIALS_DIRECTORY", None)
    return env


@contextlib.contextmanager
def run_service(
    state_dir: Path,
    upstreams: Upstreams,
    user: str = "alice",
    env_overrides: dict[str, str] | None = None,
    role: str = "admin",
    backend: Backend = SQLITE,
) -> Iterator[Service]:
    port = free_port()
    env = {
        **service_env(state_dir, upstreams, port),
        **backend.database_env(),
        **(env_overrides or {}),
    }
    token_file = state_dir.parent / f"{state_dir.name}-{user}.token"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nova_settings.admin",
            "ensure-user",
            user,
            "--token-file",
            str(token_file),
            "--role",
            role,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    log_path = state_dir.parent / f"{state_dir.name}-service.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nova_settings"], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    token = token_file.read_text().strip()
    service = Service(url, token, state_dir, env, log_path, proc, backend)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"service exited early:\n{service.log_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service did not come up:\n{service.log_text()}")
            time.sleep(0.1)
        yield service
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    key_file = tmp_path_factory.mktemp("creds") / "gateway-master-key"
    key_file.write_text(MASTER_KEY + "\n")
    ups = Upstreams(
        google=GoogleApiStandin(GOOGLE_KEY).start(),
        langsmith=LangSmithApiStandin(LANGSMITH_KEY).start(),
        gateway=FakeGateway(MASTER_KEY, GATEWAY_MODELS).start(),
        llama=FakeLlamaServer(LOCAL_CTX).start(),
        master_key_file=key_file,
    )
    yield ups
    for standin in (ups.google, ups.langsmith, ups.gateway, ups.llama):
        standin.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """Debian's Postgres server, started for this session (scripts/test installs it)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        return SQLITE
    return Backend("postgres", request.getfixturevalue("pg_cluster"))


@pytest.fixture(scope="session")
def service(
    tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams, backend: Backend
) -> Iterator[Service]:
    state_dir = tmp_path_factory.mktemp("svc") / "state"
    with run_service(state_dir, upstreams, backend=backend) as svc:
        yield svc


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with service.client() as c:
        yield c


@pytest.fixture
def fresh_settings(client: httpx.Client) -> dict:
    """Put alice's settings back to a known state, and return it."""
    r = client.put(
        "/api/user-settings/",
        json={"llm_model": LOCAL_MODEL, "llm_temperature": 0.6, "llm_max_tokens": 2048},
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def no_stored_keys(client: httpx.Client) -> Iterator[None]:
    for provider in ("google", "langsmith"):
        client.delete(f"/api/api-keys/{provider}")
    yield
    for provider in ("google", "langsmith"):
        client.delete(f"/api/api-keys/{provider}")


@pytest.fixture
def reset_modes(upstreams: Upstreams) -> Iterator[Upstreams]:
    yield upstreams
    for standin in (upstreams.google, upstreams.langsmith, upstreams.gateway, upstreams.llama):
        standin.mode = "ok"
