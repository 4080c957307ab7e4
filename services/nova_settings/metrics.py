"""``GET /metrics`` of nova-settings: what Prometheus scrapes from this service.

* requests and their latency per route template (never a raw path: bounded labels), by the
  access-log middleware, which already times every request;
* provider key validations by outcome;
* usage through the gateway per user name and model (the ``usage`` table's totals, read at
  scrape time from the database: requests, errors, tokens, cost);
* the GPUs from NVML, the model disk and the watchdog's counters, sampled by a background thread
  every ``NOVA_METRICS_SAMPLE_S`` seconds, so a scrape never waits on the driver.

No key, token or secret is a label or value: users appear by name, keys not at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import peewee
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nova_common.gateway_identity import OPERATOR_USER_ID
from nova_common.nvml import GpuReading, read_gpus

from .core.config import Config
from .core.db import Database, SqliteDatabase

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_SECONDS = Histogram(
    "nova_settings_request_duration_seconds",
    "Requests to nova-settings by route template, method and status class, and their latency.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
    registry=REGISTRY,
)
KEY_VALIDATIONS = Counter(
    "nova_settings_key_validations",
    "Provider API key validations by provider and outcome (valid, rejected, unreachable).",
    ["provider", "outcome"],
    registry=REGISTRY,
)
OPERATOR_LABEL = "(master key)"
DELETED_USER_LABEL = "(deleted user)"


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route, method, f"{status // 100}xx").observe(seconds)


@dataclass
class Sample:
    """The last background reading."""

    gpu: GpuReading | None = None
    disk: tuple[int, int] | None = None  # (free, total) bytes of the model dir's filesystem
    watchdog: dict[str, dict[str, float]] = field(default_factory=dict)


class HostSampler:
    """Reads NVML, the model disk and the watchdog state every ``interval_s`` in a thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sample = Sample()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def read_once(self) -> Sample:
        sample = Sample(gpu=read_gpus())
        if self.config.model_dir is not None:
            with contextlib.suppress(OSError):
                usage = shutil.disk_usage(self.config.model_dir)
                sample.disk = (usage.free, usage.total)
        if self.config.watchdog_state is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                targets = json.loads(self.config.watchdog_state.read_text())["targets"]
                sample.watchdog = {
                    str(name): {
                        k: float(v or 0) for k, v in t.items() if k in ("restarts", "failures")
                    }
                    for name, t in targets.items()
                }
        return sample

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample = self.read_once()
            except Exception:  # a bad reading must not end the sampling
                log.exception("host metrics sample failed")
            self._stop.wait(self.config.metrics_sample_s)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class HostCollector(Collector):
    """The sampler's last reading as gauges and counters."""

    def __init__(self, sampler: HostSampler) -> None:
        self.sampler = sampler

    def collect(self) -> Iterator[Metric]:
        sample = self.sampler.sample
        labels = ["gpu", "name"]
        available = GaugeMetricFamily("nova_gpu_available", "1 when NVML sees a GPU.")
        available.add_metric([], 1.0 if sample.gpu and sample.gpu.available else 0.0)
        yield available
        util = GaugeMetricFamily("nova_gpu_utilization_percent", "GPU utilisation.", labels=labels)
        used = GaugeMetricFamily("nova_gpu_memory_used_bytes", "VRAM in use.", labels=labels)
        total = GaugeMetricFamily("nova_gpu_memory_total_bytes", "VRAM in all.", labels=labels)
        temp = GaugeMetricFamily("nova_gpu_temperature_celsius", "GPU temperature.", labels=labels)
        power = GaugeMetricFamily("nova_gpu_power_watts", "GPU power draw.", labels=labels)
        for gpu in sample.gpu.devices if sample.gpu else ():
            key = [str(gpu.index), gpu.name]
            for family, value in (
                (util, gpu.utilization_percent),
                (used, gpu.memory_used_bytes),
                (total, gpu.memory_total_bytes),
                (temp, gpu.temperature_c),
                (power, gpu.power_w),
            ):
                if value is not None:
                    family.add_metric(key, float(value))
        yield from (util, used, total, temp, power)
        if sample.disk is not None:
            free = GaugeMetricFamily(
                "nova_model_disk_free_bytes", "Free space on the model directory's filesystem."
            )
            free.add_metric([], float(sample.disk[0]))
            size = GaugeMetricFamily(
                "nova_model_disk_size_bytes", "Size of the model directory's filesystem."
            )
            size.add_metric([], float(sample.disk[1]))
            yield from (free, size)
        restarts = CounterMetricFamily(
            "nova_watchdog_restarts", "Restarts the watchdog made, by target.", labels=["target"]
        )
        failures = GaugeMetricFamily(
            "nova_watchdog_consecutive_failures",
            "Failed watchdog probes in a row, by target.",
            labels=["target"],
        )
        for target, values in sorted(self.sampler.sample.watchdog.items()):
            restarts.add_metric([target], values.get("restarts", 0.0))
            failures.add_metric([target], values.get("failures", 0.0))
        yield from (restarts, failures)


class UsageCollector(Collector):
    """Usage through the gateway (the ``usage`` table), per user name and model, all days."""

    FIELDS = (
        ("requests", "nova_usage_requests", "Requests through the gateway."),
        ("errors", "nova_usage_errors", "Requests the backend failed."),
        ("prompt_tokens", "nova_usage_prompt_tokens", "Prompt tokens."),
        ("completion_tokens", "nova_usage_completion_tokens", "Completion tokens."),
        ("cost", "nova_usage_cost_usd", "Cost in USD (LiteLLM's cost map; 0 for local)."),
    )

    QUERY = (
        "SELECT coalesce(u.name, CASE WHEN s.user_id = ? THEN ? ELSE ? END),"
        " s.model, sum(s.requests), sum(s.errors), sum(s.prompt_tokens),"
        ' sum(s.completion_tokens), sum(s.cost) FROM usage s LEFT JOIN "user" u'
        " ON u.id = s.user_id GROUP BY 1, 2 ORDER BY 1, 2"
    )

    def __init__(self, db: Database) -> None:
        self.db = db

    def _rows(self) -> list[tuple]:
        query = self.QUERY.replace("?", self.db.param)  # Postgres' placeholder is %s
        params = (OPERATOR_USER_ID, OPERATOR_LABEL, DELETED_USER_LABEL)
        if not isinstance(self.db, SqliteDatabase):
            # Postgres: the pool (the scrape's request connection); no read-only file to open.
            try:
                with self.db.connected():
                    return list(self.db.execute_sql(query, params).fetchall())
            except peewee.DatabaseError:
                return []
        try:
            conn = sqlite3.connect(f"file:{self.db.database}?mode=ro", uri=True, timeout=2)
        except sqlite3.Error:
            return []
        try:
            return conn.execute(query, params).fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def collect(self) -> Iterator[Metric]:
        rows = self._rows()
        for index, (_column, name, help_text) in enumerate(self.FIELDS):
            family = CounterMetricFamily(name, help_text, labels=["user", "model"])
            for row in rows:
                family.add_metric([row[0], row[1]], float(row[2 + index] or 0))
            yield family


def install(config: Config, db: Database) -> HostSampler:
    """Register the collectors for this process; the returned sampler is started by the app."""
    sampler = HostSampler(config)
    for collector in list(REGISTRY._collector_to_names):  # a second app in one process (tests)
        if isinstance(collector, HostCollector | UsageCollector):
            REGISTRY.unregister(collector)
    REGISTRY.register(HostCollector(sampler))
    REGISTRY.register(UsageCollector(db))
    return sampler
