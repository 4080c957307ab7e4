"""HTTP checks of llama-server, the gateway and the settings service (short timeouts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from nova_common import promql
from nova_common.probe import probe

from .report import FiringAlert, HttpCheck, MonitoringReport

# The key series nova-diagnose shows from Prometheus (the last value of each).
KEY_SERIES = {
    "gateway requests/s": promql.per_second(promql.REQUESTS),
    "gateway 5xx/s": promql.per_second(promql.ERRORS),
    "first token p95 s": promql.ttft_quantile(0.95),
    "tokens/s": promql.per_second(promql.COMPLETION_COUNTER),
    "GPU util %": "max(nova_gpu_utilization_percent)",
    "VRAM used": "max(nova_gpu_memory_used_bytes / nova_gpu_memory_total_bytes)",
    "model disk free": "min(nova_model_disk_free_bytes / nova_model_disk_size_bytes)",
}


def get(name: str, url: str, timeout: float, ok_detail: str = "ok") -> HttpCheck:
    return _call(name, "GET", url, timeout, ok_detail=ok_detail)[0]


def _call(
    name: str,
    method: str,
    url: str,
    timeout: float,
    *,
    ok_detail: str = "ok",
    headers: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[HttpCheck, httpx.Response | None]:
    outcome = probe(method, url, timeout, headers=headers, json=body)
    response = outcome.response
    if response is None:
        check = HttpCheck(
            name=name,
            url=url,
            ok=False,
            timed_out=outcome.timed_out,
            unreachable=not outcome.timed_out,
            detail=outcome.no_answer,
        )
        return check, None
    check = HttpCheck(
        name=name,
        url=url,
        ok=response.is_success,
        status=response.status_code,
        elapsed_ms=outcome.elapsed_ms,
    )
    check.detail = (
        ok_detail if check.ok else f"HTTP {response.status_code} {_error_text(response)}".strip()
    )
    return check, response


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:120]
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", ""))
        if isinstance(error, dict):
            error = error.get("message", "")
        return str(error)[:120]
    return ""


def llama_health(base: str, timeout: float) -> HttpCheck:
    check = get("llama-server", f"{base}/health", timeout)
    if check.status == 503:
        check.detail = "loading the model (HTTP 503)"
    return check


def read_master_key(path: Path) -> tuple[str | None, str]:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except PermissionError:
        return None, f"{path} not readable (run as root)"
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    return (key, "") if key else (None, f"{path} is empty")


def gateway_models(base: str, key: str, timeout: float) -> list[str]:
    check, response = _call(
        "models", "GET", f"{base}/v1/models", timeout, headers={"Authorization": f"Bearer {key}"}
    )
    if not check.ok or response is None:
        return []
    try:
        return [str(m["id"]) for m in response.json().get("data", []) if "id" in m]
    except (ValueError, AttributeError, TypeError, KeyError):
        return []


def chat(base: str, key: str, model: str, timeout: float) -> HttpCheck:
    """A real 1-token completion through the gateway."""
    check, response = _call(
        "chat",
        "POST",
        f"{base}/v1/chat/completions",
        timeout,
        headers={"Authorization": f"Bearer {key}"},
        body={"model": model, "messages": [{"role": "user", "content": "ok"}], "max_tokens": 1},
    )
    if check.ok and response is not None:
        try:
            answered_by = response.json().get("model") or model
        except (ValueError, AttributeError):
            check.ok, check.detail = False, "HTTP 200 but not JSON"
            return check
        check.detail = f"1 token from {answered_by} ({check.elapsed_ms} ms)"
    check.detail = f"model {model}: {check.detail}" if not check.ok else check.detail
    return check


def skipped(name: str, url: str, why: str) -> HttpCheck:
    return HttpCheck(name=name, url=url, ok=True, skipped=True, detail=f"skipped: {why}")


def monitoring(url: str, timeout: float) -> MonitoringReport:
    """The firing alerts and the key series' last values, from Prometheus' HTTP API."""
    report = MonitoringReport(url=url)
    alerts = probe("GET", f"{url}/api/v1/alerts", timeout)
    if alerts.response is None or not alerts.response.is_success:
        report.error = (
            alerts.no_answer if alerts.response is None else (f"HTTP {alerts.response.status_code}")
        )
        return report
    try:
        for alert in alerts.response.json()["data"]["alerts"]:
            if alert.get("state") != "firing":
                continue
            labels, notes = alert.get("labels", {}), alert.get("annotations", {})
            report.firing.append(
                FiringAlert(
                    name=labels.get("alertname", "?"),
                    severity=labels.get("severity"),
                    summary=notes.get("summary", ""),
                    since=alert.get("activeAt"),
                )
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        report.error = "alerts answer not understood"
        return report
    for name, expr in KEY_SERIES.items():
        answer = probe("GET", f"{url}/api/v1/query?query={quote(expr)}", timeout)
        value: float | None = None
        if answer.response is not None and answer.response.is_success:
            try:
                result = answer.response.json()["data"]["result"]
                value = float(result[0]["value"][1]) if result else None
            except (ValueError, KeyError, TypeError, IndexError):
                value = None
        report.series[name] = value
    return report
