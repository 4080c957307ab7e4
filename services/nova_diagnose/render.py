"""The one-screen text output."""

from __future__ import annotations

from .host import human
from .report import HttpCheck, Report, UnitReport

WIDTH = 150


def _cut(line: str, width: int = WIDTH) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def _unit_tag(u: UnitReport) -> str:
    if not u.known:
        return "??  "
    return "ok  " if u.active_state == "active" else "FAIL"


def _http_tag(c: HttpCheck) -> str:
    return "--  " if c.skipped else ("ok  " if c.ok else "FAIL")


def render(report: Report) -> str:
    problems = [f for f in report.findings if f.level == "problem"]
    notes = [f for f in report.findings if f.level == "note"]
    verdict = "healthy" if report.healthy else f"{len(problems)} problem(s)"
    out = [f"nova-diagnose on {report.host} at {report.time}: {verdict}", "UNITS"]
    width = max((len(u.unit) for u in report.units), default=0)
    for u in report.units:
        if u.known:
            state = f"{u.active_state}/{u.sub_state}"
            if u.result and u.result != "success":
                state += f" ({u.result})"
            restarts = u.n_restarts if u.n_restarts is not None else "?"
            extra = f"  since {u.since or '?'}  restarts {restarts}"
        else:
            state, extra = "unknown", f"  ({_cut(u.reason or '?', 70)})"
        out.append(_cut(f"  {_unit_tag(u)} {u.unit:<{width}}  {state}{extra}"))
        if u.journal_kind in ("err", "last"):
            out.extend(_cut(f"         {line}") for line in u.journal)
    out.append("HEALTH")
    for c in report.http:
        out.append(_cut(f"  {_http_tag(c)} {c.name:<12} {c.url}  {c.detail}"))

    gpu = report.gpu
    if not gpu.checked:
        out.append("GPU    not checked")
    elif not gpu.available:
        out.append(_cut(f"GPU    {gpu.reason}"))
    else:
        for d in gpu.devices:
            temp = d.temperature_c if d.temperature_c is not None else "?"
            util = d.utilization_percent if d.utilization_percent is not None else "?"
            memory = f"{human(d.memory_used_bytes)} / {human(d.memory_total_bytes)}"
            out.append(
                _cut(
                    f"GPU    {d.index} {d.name}: {memory} used, {temp} °C, util {util}%; "
                    f"driver {gpu.driver_version}"
                )
            )

    disk = report.disk
    if not disk.exists:
        out.append(f"DISK   {disk.path}: missing")
    else:
        pct = f" ({disk.free_percent:.0f}% free)" if disk.free_percent is not None else ""
        files = ", ".join(
            f"{f.path.rsplit('/', 1)[-1]} {human(f.size_bytes)}" for f in disk.ggufs[:3]
        )
        more = f", +{len(disk.ggufs) - 3} more" if len(disk.ggufs) > 3 else ""
        out.append(
            _cut(
                f"DISK   {disk.path}: {human(disk.free_bytes)} free of "
                f"{human(disk.total_bytes)}{pct}; "
                f"GGUFs: {files or 'none'}{more}"
            )
        )

    used = report.in_use
    if used.model_path:
        state = human(used.model_size_bytes) if used.model_present else "MISSING"
        model = f"{used.model_path} ({state})"
    else:
        model = f"unknown ({used.exec_start_error or 'no --model in ExecStart'})"
    out.append(_cut(f"MODEL  {model}" + (f"  ngl {used.gpu_layers}" if used.gpu_layers else "")))
    build = (
        used.build_target
        if used.build_ok
        else f"{used.build_target or ''} {used.build_error}".strip()
    )
    out.append(_cut(f"BUILD  {used.build_link} -> {build}"))

    monitoring = report.monitoring
    if not monitoring.checked:
        out.append("METRICS not checked")
    elif monitoring.error:
        out.append(_cut(f"METRICS {monitoring.url}: {monitoring.error}"))
    else:
        values = ", ".join(
            f"{name} {_series(name, value)}" for name, value in monitoring.series.items()
        )
        firing = ", ".join(a.name for a in monitoring.firing) or "none"
        out.append(_cut(f"METRICS alerts firing: {firing}"))
        out.append(_cut(f"        {values}", WIDTH * 2))

    if problems:
        out.append("PROBLEMS")
        out.extend(_cut(f"  ! {f.message} -> {f.next_step}", WIDTH * 2) for f in problems)
    if notes:
        out.append("NOTES")
        out.extend(_cut(f"  - {f.message} -> {f.next_step}") for f in notes)
    return "\n".join(out) + "\n"


def _series(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name in ("VRAM used", "model disk free"):
        return f"{value * 100:.0f}%"
    return f"{value:.3g}"
