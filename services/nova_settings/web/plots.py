"""Plots for Status and Usage: series from Prometheus' HTTP API (``/api/v1/query_range``),
drawn as SVG polylines on the server (no chart library, nothing fetched by the browser).

The browser asks this service (``GET /plots``), never Prometheus: Prometheus stays on loopback
and the page's CSP stays ``default-src 'self'``.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import httpx

from nova_common import promql

from .charts import PALETTE

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 320, 140, 44, 20, 8
RANGES = {"1h": (3600, 30), "1d": (86400, 600)}  # seconds shown, step


@dataclass(frozen=True)
class Query:
    label: str
    expr: str


@dataclass(frozen=True)
class PlotSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]


STATUS_PLOTS = (
    PlotSpec(
        "Gateway requests and errors",
        "per s",
        (
            Query("requests", promql.per_second(promql.REQUESTS)),
            Query("errors (5xx)", promql.per_second(promql.ERRORS)),
            Query("refused (4xx)", promql.per_second(promql.REFUSED)),
        ),
    ),
    PlotSpec(
        "Time to first token",
        "s",
        (
            Query("p50", promql.ttft_quantile(0.5)),
            Query("p95", promql.ttft_quantile(0.95)),
        ),
    ),
    PlotSpec(
        "Tokens generated",
        "per s",
        (Query("tokens/s", promql.per_second(promql.COMPLETION_COUNTER)),),
    ),
    PlotSpec("GPU utilisation", "%", (Query("GPU {gpu}", "nova_gpu_utilization_percent"),)),
    PlotSpec(
        "VRAM used",
        "GiB",
        (Query("GPU {gpu}", "nova_gpu_memory_used_bytes / 2^30"),),
    ),
)


def usage_plots(user: str | None) -> tuple[PlotSpec, ...]:
    """Requests and tokens per user (everyone: None), from the gateway's counters."""
    only = "" if user is None else ',user="' + _escape(user) + '"'
    return (
        PlotSpec(
            "Requests",
            "per s",
            (
                Query(
                    "{user}",
                    promql.per_second(
                        f"{promql.REQUEST_COUNTER}{{{promql.MODEL_ROUTES}{only}}}", by="user"
                    ),
                ),
            ),
        ),
        PlotSpec(
            "Tokens generated",
            "per s",
            (
                Query(
                    "{user}",
                    promql.per_second(f"{promql.COMPLETION_COUNTER}{{{only[1:]}}}", by="user"),
                ),
            ),
        ),
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: str  # SVG polyline points
    last: str


@dataclass
class Plot:
    title: str
    unit: str
    lines: list[Line] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    error: str | None = None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


async def _query(
    client: httpx.AsyncClient, base: str, expr: str, start: float, end: float, step: int
) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    response = await client.get(
        f"{base}/api/v1/query_range",
        params={"query": expr, "start": start, "end": end, "step": step},
        timeout=5,
    )
    response.raise_for_status()
    out = []
    for series in response.json()["data"]["result"]:
        points = []
        for t, v in series["values"]:
            value = float(v)
            if math.isfinite(value):
                points.append((float(t), value))
        out.append((series["metric"], points))
    return out


def _draw(
    spec: PlotSpec, found: list[tuple[str, list[tuple[float, float]]]], start: float, end: float
) -> Plot:
    plot = Plot(spec.title, spec.unit)
    top = max((v for _label, pts in found for _t, v in pts), default=0.0)
    top = top * 1.1 if top > 0 else 1.0
    plot_h, plot_w = HEIGHT - BOTTOM - TOP, WIDTH - LEFT
    for i, (label, pts) in enumerate(found):
        coords = " ".join(
            f"{LEFT + plot_w * (t - start) / (end - start):.1f},"
            f"{HEIGHT - BOTTOM - plot_h * v / top:.1f}"
            for t, v in pts
        )
        last = _fmt(pts[-1][1]) if pts else "-"
        plot.lines.append(Line(label, PALETTE[i % len(PALETTE)], coords, last))
    plot.ticks = [(HEIGHT - BOTTOM - plot_h * f, _fmt(top * f)) for f in (0, 0.5, 1)]
    return plot


async def plots(
    client: httpx.AsyncClient, base: str | None, specs: tuple[PlotSpec, ...], span: str
) -> list[Plot]:
    """Each spec's plot over the last ``span`` (a key of RANGES); a failed query is a plot with
    its error, not an error page."""
    seconds, step = RANGES[span]
    end = time.time()
    start = end - seconds
    if base is None:
        return [Plot(s.title, s.unit, error="no Prometheus configured") for s in specs]
    queries = [(spec, q) for spec in specs for q in spec.queries]
    results = await asyncio.gather(
        *(_query(client, base, q.expr, start, end, step) for _spec, q in queries),
        return_exceptions=True,
    )
    by_spec: dict[str, list[tuple[str, list[tuple[float, float]]]]] = {}
    errors: dict[str, str] = {}
    for (spec, q), result in zip(queries, results, strict=True):
        if isinstance(result, BaseException):
            kind = type(result).__name__
            errors[spec.title] = f"Prometheus did not answer ({kind})"
            continue
        for metric, points in result:
            label = q.label.format_map({k: metric.get(k, "") for k in ("gpu", "user")})
            by_spec.setdefault(spec.title, []).append((label or q.label, points))
    out = []
    for spec in specs:
        if spec.title in errors:
            out.append(Plot(spec.title, spec.unit, error=errors[spec.title]))
        else:
            out.append(_draw(spec, by_spec.get(spec.title, []), start, end))
    return out
