"""Gather the report: units and journal, HTTP checks, GPU, disk, model and build."""

from __future__ import annotations

import datetime
import socket

from . import host, probes, system
from .findings import find
from .options import Options
from .redact import Redactor
from .report import HttpCheck, MonitoringReport, Report


def _chat(opts: Options, gateway_ready: bool) -> HttpCheck:
    url = f"{opts.gateway_url}/v1/chat/completions"
    if not opts.chat:
        return probes.skipped("chat", url, "--no-chat")
    if not gateway_ready:
        return probes.skipped("chat", url, "gateway not ready")
    key, why = probes.read_master_key(opts.master_key_file)
    if key is None:
        return probes.skipped("chat", url, why)
    model = opts.local_model
    if not model:
        models = probes.gateway_models(opts.gateway_url, key, opts.timeout_s)
        if not models:
            return probes.HttpCheck(
                name="chat", url=url, ok=False, detail="no model name (settings.env, /v1/models)"
            )
        model = models[0]
    return probes.chat(opts.gateway_url, key, model, opts.chat_timeout_s)


def collect(opts: Options, redactor: Redactor) -> Report:
    units = []
    for unit in opts.units:
        state = system.unit_state(opts.systemctl, unit)
        if unit.endswith(".service"):
            system.add_journal(opts.journalctl, state, redactor)
        units.append(state)

    http = [probes.llama_health(opts.llama_url, opts.timeout_s)]
    readiness = probes.get("gateway", f"{opts.gateway_url}/health/readiness", opts.timeout_s)
    http.append(readiness)
    http.append(_chat(opts, readiness.ok))
    http.append(probes.get("settings", f"{opts.settings_url}/health", opts.timeout_s))

    gpu = (
        host.gpu_report()
        if opts.gpu != "off"
        else host.GpuReport(checked=False, reason="not checked")
    )
    exec_start = system.exec_start(opts.systemctl, opts.llama_unit)
    report = Report(
        host=socket.gethostname(),
        time=datetime.datetime.now(datetime.UTC).astimezone().isoformat(timespec="seconds"),
        units=units,
        http=http,
        gpu=gpu,
        disk=host.disk_report(opts.model_dir),
        in_use=host.in_use_report(exec_start, opts.llama_current),
        redaction_gaps=redactor.unreadable,
        monitoring=(
            probes.monitoring(opts.prometheus_url, opts.timeout_s)
            if opts.prometheus_url
            else MonitoringReport(checked=False)
        ),
    )
    report.findings = find(report, opts)
    report.healthy = not any(f.level == "problem" for f in report.findings)
    return report
