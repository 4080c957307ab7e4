"""Problems (exit code 1) and notes, each with the next step to take."""

from __future__ import annotations

from .host import human
from .options import Options
from .report import Finding, HttpCheck, Report, UnitReport

_UNIT_HINTS = {
    "nova-llama-server": "is the model file present? does it fit in (V)RAM?",
    "nova-litellm": "is /var/lib/nova-settings/gateway/config.yaml valid? is the master key there?",
    "nova-settings": "check /etc/nova/settings.env and /var/lib/nova-settings",
    "nova-litellm-reload": "systemctl status nova-litellm-reload.path nova-litellm-reload.service",
}


def short(unit: str) -> str:
    return unit.removesuffix(".service")


def _problem(message: str, next_step: str) -> Finding:
    return Finding(level="problem", message=message, next_step=next_step)


def _note(message: str, next_step: str) -> Finding:
    return Finding(level="note", message=message, next_step=next_step)


def _unit_findings(u: UnitReport) -> list[Finding]:
    name = short(u.unit)
    journal = f"journalctl -u {name} -e"
    hint = _UNIT_HINTS.get(name.split(".")[0], f"systemctl status {u.unit}")
    if u.reason == "unit not installed":
        return [_problem(f"{u.unit} is not installed", "re-run the playbook (ansible/site.yml)")]
    if not u.known:
        return []
    if u.active_state == "failed":
        result = f" ({u.result})" if u.result and u.result != "success" else ""
        return [_problem(f"{name} failed{result}", f"{journal}; {hint}")]
    if u.active_state == "inactive":
        return [
            _problem(
                f"{name} is stopped",
                f"systemctl start nova-llm.target (unless stopped on purpose); {journal}",
            )
        ]
    if u.active_state != "active":
        since = f" since {u.since}" if u.since else ""
        return [
            _problem(
                f"{name} is {u.active_state}/{u.sub_state}{since}",
                f"journalctl -fu {name} (loading a large model takes minutes)",
            )
        ]
    if u.n_restarts:
        return [
            _note(f"{name} restarted {u.n_restarts} times", f"journalctl -u {name} -p warning -e")
        ]
    return []


def _unit_is_down(report: Report, unit: str) -> bool:
    found = next((u for u in report.units if u.unit == unit), None)
    return found is not None and found.known and found.active_state != "active"


def _http_finding(c: HttpCheck, unit: str, report: Report, opts: Options) -> Finding | None:
    if c.ok or _unit_is_down(report, unit):
        return None  # the unit's own finding says it already
    name = short(unit)
    if c.status == 503 and c.name == "llama-server":
        return _problem(
            "llama-server is still loading the model (503)", f"wait; journalctl -fu {name}"
        )
    if c.timed_out:
        return _problem(
            f"{c.name} does not answer within {opts.timeout_s:g} s (hung or stopped?)",
            f"systemctl restart {name}; then journalctl -u {name} -e",
        )
    if c.unreachable:
        return _problem(
            f"{c.name} not reachable at {c.url}",
            f"systemctl status {name}; does its --host/--port match {c.url}?",
        )
    return _problem(f"{c.name} unhealthy: {c.detail}", f"journalctl -u {name} -e")


def _chat_finding(c: HttpCheck, opts: Options) -> Finding | None:
    if c.skipped:
        if "--no-chat" in c.detail or "not ready" in c.detail:
            return None
        return _note(f"test chat {c.detail}", "run as root for the end-to-end chat test")
    if c.ok:
        return None
    message = f"gateway healthy but chat failed: {c.detail}"
    if c.status in (401, 403):
        step = (
            f"check the master key ({opts.master_key_file}); "
            f"systemctl restart {short(opts.gateway_unit)} if it was replaced"
        )
    elif c.status in (400, 404):
        step = (
            "check the model name: "
            f"curl -H 'Authorization: Bearer ...' {opts.gateway_url}/v1/models"
        )
    elif c.timed_out:
        step = (
            f"the model is slow or stuck: curl {opts.llama_url}/health; "
            f"journalctl -u {short(opts.llama_unit)} -e"
        )
    else:
        step = f"check the master key / model name; journalctl -u {short(opts.gateway_unit)} -e"
    return _problem(message, step)


def find(report: Report, opts: Options) -> list[Finding]:
    findings: list[Finding] = []
    for u in report.units:
        findings.extend(_unit_findings(u))
    if report.units and not any(u.known for u in report.units):
        reason = report.units[0].reason or "unknown"
        findings.append(
            _note(f"unit states unknown ({reason})", "run nova-diagnose on the host itself")
        )

    units = {
        "llama-server": opts.llama_unit,
        "gateway": opts.gateway_unit,
        "settings": opts.settings_unit,
    }
    for c in report.http:
        if c.name == "chat":
            finding = _chat_finding(c, opts)
        else:
            finding = _http_finding(c, units.get(c.name, c.name), report, opts)
        if finding is not None:
            findings.append(finding)

    gpu = report.gpu
    wants_gpu = opts.gpu == "require" or (
        opts.gpu == "auto"
        and (report.in_use.gpu_layers or "0").strip().isdigit()
        and int(report.in_use.gpu_layers or "0") > 0
    )
    if gpu.checked and not gpu.available and wants_gpu:
        findings.append(
            _problem(
                f"llama-server wants the GPU but: {gpu.reason}",
                "nvidia-smi; dmesg | grep -i nvrm; is a reboot pending after a driver install?",
            )
        )

    disk = report.disk
    if not disk.exists:
        findings.append(
            _problem(f"model dir {disk.path} is missing", "re-run the playbook (llm_model role)")
        )
    elif disk.free_percent is not None and disk.free_percent < opts.min_free_percent:
        findings.append(
            _problem(
                f"disk < {opts.min_free_percent:g}% free in {disk.path} "
                f"({human(disk.free_bytes)} of {human(disk.total_bytes)})",
                f"remove unused GGUFs (ls -lS {disk.path}) or grow the disk",
            )
        )

    monitoring = report.monitoring
    if monitoring.checked and monitoring.error:
        findings.append(
            _note(
                f"Prometheus at {monitoring.url} did not answer ({monitoring.error})",
                "systemctl status prometheus; journalctl -u prometheus -e",
            )
        )
    for alert in monitoring.firing:
        findings.append(
            _problem(
                f"alert {alert.name} firing: {alert.summary}",
                f"{monitoring.url}/alerts (an ssh tunnel to it), the rules in "
                "/etc/prometheus/rules/nova.rules.yml",
            )
        )

    used = report.in_use
    if used.model_present is False:
        findings.append(
            _problem(
                f"model file {used.model_path} (llama-server --model) is missing",
                f"ls -l {disk.path}; re-run the playbook (llm_model role)",
            )
        )
    if used.build_error:
        findings.append(
            _problem(
                f"llama.cpp build link {used.build_link}: {used.build_error}",
                "ls -l the builds dir; set llama_cpp_active_build and re-run the playbook",
            )
        )
    if opts.bundle is not None and report.redaction_gaps:
        findings.append(
            _note(
                f"{len(report.redaction_gaps)} secret file(s) unreadable: "
                "only key-shaped text is redacted",
                "run as root so the bundle redacts every secret literally",
            )
        )
    return findings
