"""The Usage chart: tokens per day, one stacked bar per day and a colour per user, as plain
numbers for an SVG the template draws (no chart library, nothing to fetch, works without
JavaScript). The same figures are in a table beside it for screen readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from ..schemas import UsageOut

WIDTH = 640
HEIGHT = 220
AXIS_LEFT = 56
AXIS_BOTTOM = 28
TOP = 12
# Colour-blind-safe (Okabe-Ito); a user past the eighth reuses a colour.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000")


@dataclass(frozen=True)
class Segment:
    user: str
    tokens: int
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass
class Day:
    day: str
    label: str
    tokens: int = 0
    requests: int = 0
    segments: list[Segment] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    days: list[Day]
    users: list[tuple[str, str]]  # (name, colour)
    max_tokens: int
    ticks: list[tuple[float, str]]  # (y, label)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = AXIS_LEFT
    bottom: float = HEIGHT - AXIS_BOTTOM


def _nice_ceiling(value: int) -> int:
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _short(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:g}k"
    return f"{n:g}"


def usage_chart(usage: UsageOut, today: date) -> Chart:
    start = date.fromisoformat(usage.since)
    span = max(1, (today - start).days + 1)
    days = [
        Day(day=(d := start + timedelta(days=i)).isoformat(), label=d.strftime("%d %b"))
        for i in range(span)
    ]
    by_day = {d.day: d for d in days}
    per_user: dict[tuple[str, str], int] = {}
    users: list[str] = []
    for row in usage.rows:
        slot = by_day.get(row.day)
        if slot is None:
            continue
        slot.tokens += row.total_tokens
        slot.requests += row.requests
        per_user[(row.day, row.user)] = per_user.get((row.day, row.user), 0) + row.total_tokens
        if row.user not in users:
            users.append(row.user)
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(users)}
    top = _nice_ceiling(max((d.tokens for d in days), default=0))
    plot_h = HEIGHT - AXIS_BOTTOM - TOP
    slot_w = (WIDTH - AXIS_LEFT) / span
    bar_w = max(2.0, slot_w * 0.7)
    for i, slot in enumerate(days):
        x = AXIS_LEFT + i * slot_w + (slot_w - bar_w) / 2
        y = HEIGHT - AXIS_BOTTOM
        for name in users:
            tokens = per_user.get((slot.day, name), 0)
            if not tokens:
                continue
            h = plot_h * tokens / top
            y -= h
            slot.segments.append(
                Segment(
                    name,
                    tokens,
                    round(x, 1),
                    round(y, 1),
                    round(bar_w, 1),
                    round(h, 1),
                    colours[name],
                )
            )
    ticks = [
        (round(HEIGHT - AXIS_BOTTOM - plot_h * f, 1), _short(top * f))
        for f in (0, 0.25, 0.5, 0.75, 1)
    ]
    return Chart(days=days, users=[(u, colours[u]) for u in users], max_tokens=top, ticks=ticks)
