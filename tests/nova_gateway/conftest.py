"""The settings service's stand-in upstreams, shared with tests/nova_settings: the gateway's
usage batches go to a real settings service. And, for the tests in the gateway's venv, one
real PrometheusLogger configured as deployed (a process can register its metrics once)."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.nova_settings.conftest import upstreams  # noqa: F401  (a fixture)

SUCCESS_EVENT = Path(__file__).parent / "data" / "prometheus_success_event.json"
GATEWAY_CONFIG = Path(__file__).parents[2] / "services/nova_settings/gateway/litellm-config.yaml.j2"


def deployed_metrics_config() -> list[dict[str, Any]]:
    """The prometheus_metrics_config block of the gateway's config template, as deployed."""
    text = GATEWAY_CONFIG.read_text()
    block = text.split("prometheus_metrics_config:\n", 1)[1].split("{%", 1)[0]
    return yaml.safe_load(textwrap.dedent(block))


def prometheus_event(stream: bool = True, user: str = "alice") -> dict[str, Any]:
    """The kwargs of LiteLLM's success event for one request, recorded on a test host."""
    kwargs = json.loads(SUCCESS_EVENT.read_text())
    for name in ("start_time", "api_call_start_time", "completion_start_time", "end_time"):
        kwargs[name] = datetime.fromisoformat(kwargs[name])
    kwargs["stream"] = kwargs["standard_logging_object"]["stream"] = stream
    kwargs["standard_logging_object"]["metadata"]["user_api_key_user_id"] = user
    return kwargs


@pytest.fixture(scope="session")
def prometheus_logger() -> Any:
    """A real PrometheusLogger configured as the gateway is (in this process's registry)."""
    litellm = pytest.importorskip("litellm")
    from litellm.integrations.prometheus import PrometheusLogger

    litellm.prometheus_metrics_config = deployed_metrics_config()
    return PrometheusLogger()
