"""The OpenAPI document and the server agree: schemathesis, every check, finds nothing.

The schemathesis CLI (``st run --checks all``) runs against a settings service of its own
(real uvicorn on a loopback port, stand-in upstreams), authenticated with a real token. Its
examples, coverage and fuzzing phases send schema-valid and schema-violating requests to
every operation and check status codes, content types, response schemas, the refusal of bad
data and acceptance of good data, 405s with a truthful ``Allow``, auth being enforced, and
that nothing answers 5xx.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import run_service

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25  # per operation and phase: about 20 s on 2 cores


@pytest.fixture(scope="module")
def contract_service(tmp_path_factory, upstreams, backend):
    state = tmp_path_factory.mktemp("contract") / "state"
    with run_service(state, upstreams, backend=backend) as svc:
        yield svc


def test_schemathesis_finds_nothing(contract_service, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            f"{contract_service.url}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {contract_service.token}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--no-color",
        ],
        cwd=tmp_path,  # anything schemathesis writes stays out of the tree
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "16/16" in result.stdout  # every operation was selected and tested
