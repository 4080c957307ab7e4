"""Fixtures: the Gemini and OpenAI-compatible stand-ins on loopback, one per test session, put
back to their defaults (faults off, log cleared) before each test.

The LiteLLM tests skip when ``litellm`` is not installed (the dev venv lacks it; it lives in
the gateway's venv). ``LITELLM_LOCAL_MODEL_COST_MAP`` keeps its import off the network.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.standins.gemini_api import GeminiStandin
from tests.standins.openai_backend import OpenAIBackendStandin

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parents[2]

GEMINI_KEY = "AIzaSyTESTKEY0123456789abcdefghij3xYz"


@pytest.fixture(scope="session")
def gemini_server() -> Iterator[GeminiStandin]:
    with GeminiStandin(key=GEMINI_KEY) as standin:
        yield standin


@pytest.fixture(scope="session")
def openai_server() -> Iterator[OpenAIBackendStandin]:
    with OpenAIBackendStandin() as standin:
        yield standin


@pytest.fixture
def gemini(gemini_server: GeminiStandin) -> GeminiStandin:
    gemini_server.reset()
    return gemini_server


@pytest.fixture
def openai_backend(openai_server: OpenAIBackendStandin) -> OpenAIBackendStandin:
    openai_server.reset()
    return openai_server
