"""HTTP checks of llama-server, the gateway and the settings service (short timeouts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from nova_common.probe import probe

from .report import HttpCheck


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
