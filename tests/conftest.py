"""The test suite's top-level conftest: how the suites are laid out and import each other.

* One folder per thing under test; each folder's ``conftest.py`` holds that suite's fixtures.
  ``tests/standins/`` are the loopback stand-ins for services the test machines cannot reach
  (Hugging Face, Google, LangSmith) and for our own upstreams (one base:
  ``tests/standins/base.py``); ``tests/host/`` the suites against a real provisioned systemd
  host, selected with ``-m host`` (see its ``conftest.py`` for what it owns and what the
  Molecule scenario owns).
* Imports: ``pythonpath`` in ``pyproject.toml`` puts ``services/`` and the repository root on
  ``sys.path``, so tests import the services' packages by name (``import nova_settings``) and
  shared test code as the ``tests`` package (``from tests.standins.gemini_api import
  GeminiStandin``); inside a folder, relative imports (``from .conftest import ...``). No test
  changes ``sys.path``. Every folder is a package (``__init__.py``), so a test folder that
  mirrors a service's name never shadows the service's package.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.fake_systemd import RECORDER, FakeSystemd, write_script
from tests.standins.upstreams import Standin


@pytest.fixture
def fake_systemd(tmp_path: Path) -> FakeSystemd:
    return FakeSystemd(tmp_path)


@pytest.fixture
def standins() -> Iterator[list[Standin]]:
    """Collects stand-ins created in a test and closes them afterwards."""
    started: list[Standin] = []
    yield started
    for s in started:
        s.close()


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "restarts.log"
    return write_script(tmp_path / "restart-recorder", RECORDER.format(log=log)), log


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The embedded model (SmolLM2-135M Q4_1), fetched and verified as scripts/demo does."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [str(root / "scripts/fetch-embedded-model")], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())
