"""metrics_tuning against the LiteLLM the gateway runs: its table names every metric each
skipped step sets (read from LiteLLM's source, helpers included), and a step runs again as
soon as one of its metrics is enabled; the success event's fast path moves exactly the series
LiteLLM's own event moves for the same request, with the deployed config.

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
from prometheus_client import REGISTRY  # noqa: E402

from nova_gateway import metrics_tuning  # noqa: E402
from tests.nova_gateway.conftest import prometheus_event  # noqa: E402

Logger = prometheus.PrometheusLogger


def _original(name: str) -> Any:
    return inspect.unwrap(getattr(Logger, name))


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


# The success event's fast path ------------------------------------------------------------


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        if family.name.startswith("litellm_")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _moved(run: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    before = _samples()
    run()
    after = _samples()
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if after[key] != before.get(key, 0.0)
    }


@pytest.mark.parametrize("stream", [True, False])
def test_the_fast_path_moves_the_same_series_as_litellms_event(
    prometheus_logger: Any, stream: bool
) -> None:
    logger = prometheus_logger
    metrics_tuning.install()
    event = Logger.async_log_success_event
    assert event.__nova_tuned__
    assert metrics_tuning._fast_plan(logger) is not None, "the deployed config takes the fast path"
    litellms = _moved(
        lambda: asyncio.run(
            _original("async_log_success_event")(logger, prometheus_event(stream), None, None, None)
        )
    )
    ours = _moved(lambda: asyncio.run(event(logger, prometheus_event(stream), None, None, None)))
    assert ours.keys() == litellms.keys()
    assert ours == pytest.approx(litellms)  # sums: the deltas of running totals
    names = {name for name, _ in ours}
    assert "litellm_proxy_total_requests_metric_total" in names
    assert ("litellm_llm_api_time_to_first_token_metric_count" in names) is stream
    tokens = {
        labels: value
        for (name, labels), value in ours.items()
        if name == "litellm_output_tokens_metric_total"
    }
    assert list(tokens.values()) == [3.0] and ("user", "alice") in next(iter(tokens))


def test_litellms_event_runs_when_a_label_or_metric_has_no_fast_path(
    prometheus_logger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = prometheus_logger
    metrics_tuning.install()
    original = Logger.get_labels_for_metric

    def with_team(self: Any, metric_name: str) -> list[str]:
        labels = original(self, metric_name=metric_name)
        return [*labels, "team"] if metric_name == "litellm_output_tokens_metric" else labels

    monkeypatch.setattr(Logger, "get_labels_for_metric", with_team)
    monkeypatch.delitem(logger.__dict__, "_nova_fast_success_plan", raising=False)
    assert metrics_tuning._fast_plan(logger) is None
    monkeypatch.undo()

    monkeypatch.setattr(logger, "litellm_input_cached_tokens_metric", object())  # enabled
    monkeypatch.delitem(logger.__dict__, "_nova_fast_success_plan", raising=False)
    assert metrics_tuning._fast_plan(logger) is None
    monkeypatch.undo()
    logger.__dict__.pop("_nova_fast_success_plan", None)
    assert metrics_tuning._fast_plan(logger) is not None


def test_every_metric_of_the_success_event_is_either_fast_or_must_be_off() -> None:
    """A LiteLLM upgrade that sets a new series in its success event fails here."""
    expected = set(metrics_tuning.FAST_METRICS) | set(metrics_tuning.OTHER_SUCCESS_METRICS)
    assert _metrics_set_by("async_log_success_event") == expected
