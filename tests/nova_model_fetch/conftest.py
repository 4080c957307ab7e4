"""Run the real nova-model-fetch CLI as a subprocess against the loopback Hub stand-in."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.standins.huggingface_hub_server import HubStandin

ROOT = Path(__file__).resolve().parents[2]

REPO = "nova-test/tiny-model-GGUF"
FILENAME = "tiny-model.Q4_K_M.gguf"
MiB = 1024 * 1024
# Nothing listens on the discard port: a stray network call fails fast, never leaves the host.
NO_HUB = "http://127.0.0.1:9"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    return sha256(path.read_bytes())


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        lines = self.stdout.strip().splitlines()
        assert len(lines) == 1, f"expected one JSON line, got: {self.stdout!r}"
        return json.loads(lines[0])


def cli_env(home: Path, endpoint: str | None, token: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGING_FACE")) and "proxy" not in k.lower()
    }
    env.update(
        PYTHONPATH=str(ROOT / "services"),
        HF_HOME=str(home),  # no token file from the real home directory
        HF_ENDPOINT=endpoint or NO_HUB,
        NO_PROXY="127.0.0.1,localhost",
        HF_HUB_ETAG_TIMEOUT="5",
        HF_HUB_DOWNLOAD_TIMEOUT="5",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


Cli = Callable[..., CliResult]


@pytest.fixture
def cli_command() -> list[str]:
    return [sys.executable, "-m", "nova_model_fetch"]


@pytest.fixture
def cli(tmp_path: Path, cli_command: list[str]) -> Cli:
    home = tmp_path / "hf-home"
    home.mkdir()

    def run(
        *args: str, endpoint: str | None = None, token: str | None = None, timeout: float = 90
    ) -> CliResult:
        proc = subprocess.run(
            [*cli_command, *args],
            env=cli_env(home, endpoint, token),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    run.home = home  # type: ignore[attr-defined]
    return run


@pytest.fixture
def payload() -> bytes:
    return os.urandom(3 * MiB)


@pytest.fixture
def hub(payload: bytes) -> Iterator[HubStandin]:
    with HubStandin(repo=REPO, filename=FILENAME, content=payload) as server:
        yield server


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    return models / FILENAME
