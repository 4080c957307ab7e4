"""metrics_tuning against the LiteLLM the gateway runs: its table names every metric each
skipped step sets (read from LiteLLM's source, helpers included), and a step runs again as
soon as one of its metrics is enabled.

Needs LiteLLM: scripts/test runs it in the gateway's venv (.venv-gateway).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import textwrap
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
prometheus = pytest.importorskip("litellm.integrations.prometheus")

from litellm.types.integrations.prometheus import NoOpMetric  # noqa: E402

from nova_gateway import metrics_tuning  # noqa: E402

Logger = prometheus.PrometheusLogger


def _original(name: str) -> Any:
    method = getattr(Logger, name)
    return getattr(method, "__wrapped__", method)


def _metrics_set_by(name: str, seen: set[str] | None = None) -> set[str]:
    """Every ``self.litellm_*`` the method touches, through the methods it calls on self."""
    seen = seen if seen is not None else set()
    if name in seen or not hasattr(Logger, name):
        return set()
    seen.add(name)
    tree = ast.parse(textwrap.dedent(inspect.getsource(_original(name))))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id not in ("self", "PrometheusLogger"):
                continue
            if node.attr.startswith("litellm_"):
                found.add(node.attr)
            elif callable(getattr(Logger, node.attr, None)):
                found |= _metrics_set_by(node.attr, seen)
    return found


@pytest.mark.parametrize("step", sorted(metrics_tuning.STEPS))
def test_the_table_names_every_metric_a_skipped_step_sets(step: str) -> None:
    assert hasattr(Logger, step), f"LiteLLM has no PrometheusLogger.{step}"
    missing = _metrics_set_by(step) - set(metrics_tuning.STEPS[step])
    assert not missing, f"{step} also sets {sorted(missing)}: add them to STEPS"


class _Fake:
    """Stands in for a PrometheusLogger whose metrics are all disabled."""

    def __init__(self) -> None:
        for metrics in metrics_tuning.STEPS.values():
            for name in metrics:
                setattr(self, name, NoOpMetric())


class _Payload(dict):
    """A standard logging payload that remembers whether the step looked at it."""

    read = False

    def get(self, *args: Any) -> Any:
        self.read = True
        return super().get(*args)


def test_steps_are_skipped_while_disabled_and_run_once_enabled() -> None:
    metrics_tuning.install()
    metrics_tuning.install()  # idempotent: wrapped once
    media = Logger._increment_media_generation_metrics
    assert media.__nova_tuned__ and not hasattr(media.__wrapped__, "__nova_tuned__")

    fake, payload = _Fake(), _Payload()
    assert media(fake, standard_logging_payload=payload, enum_values=None) is None
    assert not payload.read
    budget = Logger._increment_remaining_budget_metrics(fake)
    assert inspect.iscoroutine(budget)
    assert asyncio.run(budget) is None

    fake.litellm_images_generated_metric = object()  # enabled: the real step runs again
    media(fake, standard_logging_payload=payload, enum_values=None)
    assert payload.read
