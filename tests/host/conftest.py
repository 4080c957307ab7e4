"""Fixtures for tests against a real provisioned host (``-m host``).

What this suite owns, and what Molecule owns: the Molecule scenario (``ansible/molecule``) owns
the playbook's contract: converge, idempotence, check mode, and what the roles install and
configure (files, units, permissions, the hardening and exposure of units, the upgrade and
rollback of the llama.cpp build, the model and the gateway venv). ``tests/host`` owns runtime
behaviour that needs orchestrated traffic or failures against a provisioned host: key changes
driving the gateway, fallbacks under ``kill -9``, tool calls, restarts under load, durability
of acknowledged writes, a full disk, fuzzing. A check that reads what the playbook left on the
host belongs in Molecule's verify; one that drives the running stack with clients or faults
belongs here.

One session boots its own systemd host (``scripts/nova-host up hosttest 2251``, a
systemd-nspawn container sharing this machine's network namespace, so the host's loopback
ports are ours), provisions it once with ``ansible-playbook ansible/site.yml`` and the embedded
model, and powers it off at the end. The Gemini API is the loopback stand-in
(``tests/standins/gemini_api.py``), run here in-process on a fixed port with a known key; both
the settings service (key validation) and LiteLLM (``gemini/`` provider) are pointed at it.
Every test module shares that one host; none relies on another having run first: a test that
needs the Google key stored takes ``with_key``, one that needs the stack up calls
``wait_healthy``, and the key test starts by removing any stored key. The helpers live in
``hostlib.py``; this file holds the fixtures only.

These tests take minutes: they run only when selected (``-m host``) or with
``NOVA_HOST_TESTS=1``. ``NOVA_HOSTTEST_KEEP=1`` leaves the host running afterwards (a later
session re-provisions the running host, which is quick). ``NOVA_HOSTTEST_NAME``,
``NOVA_HOSTTEST_SSH_PORT`` and ``NOVA_HOSTTEST_PORT_OFFSET`` (added to the service ports and the
Gemini stand-in's) let a second session run beside the default one.

    PYTHONDONTWRITEBYTECODE=1 .venv/bin/pytest -q -p no:cacheprovider -m host tests/host -s
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standins.gemini_api import GeminiStandin

from .hostlib import METRICS_TOKEN_FILE, Host, provisioned_host


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    selected = "host" in (config.option.markexpr or "") or os.environ.get("NOVA_HOST_TESTS") == "1"
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.host)
            if not selected:
                item.add_marker(
                    pytest.mark.skip(reason="needs the real test host: run with -m host")
                )


@pytest.fixture(scope="session")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """The provisioned host (booted and provisioned once per session, powered off after)."""
    with provisioned_host(tmp_path_factory.mktemp("host")) as instance:
        yield instance


@pytest.fixture
def gemini(host: Host) -> Iterator[GeminiStandin]:
    """The Gemini stand-in, faults off and log cleared before and after the test."""
    host.gemini.reset()
    yield host.gemini
    host.gemini.reset()


@pytest.fixture
def with_key(host: Host, gemini: GeminiStandin) -> Host:
    """The host with the stand-in's Google key stored, llama-server up, and both models
    answered by their own backends."""
    host.ensure_llama_running()
    host.ensure_google_key()
    host.wait_routes_normal()
    gemini.reset()
    return host


@pytest.fixture(scope="session")
def metrics_token(host: Host) -> str:
    return host.ssh(f"cat {METRICS_TOKEN_FILE}")
