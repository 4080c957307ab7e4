"""What the Status page shows beyond ``GET /api/system/status``: the model and llama.cpp build
llama-server reports (``/props``), the last good state the suite came up on and the last
rollback to it (files the nova_stack role writes; absent on a host that never had either)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .. import discovery
from ..core.config import Config


@dataclass(frozen=True)
class Recorded:
    """One of the role's JSON records: when it was written and what it says."""

    path: str
    at: str | None = None
    entries: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class InUse:
    model_path: str | None = None
    build: str | None = None
    error: str | None = None


def _read_record(path: Path | None) -> Recorded | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Recorded(path=str(path), error=exc.strerror or "unreadable")
    try:
        data: Any = json.loads(text)
    except ValueError:
        return Recorded(path=str(path), error="not JSON")
    if not isinstance(data, dict):
        return Recorded(path=str(path), error="not a JSON object")
    restored = data.get("restored", data)
    entries = {
        str(k): str(v)
        for k, v in (restored.items() if isinstance(restored, dict) else ())
        if isinstance(v, str | int | float)
    }
    at = data.get("at") or datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")
    reason = data.get("reason")
    return Recorded(
        path=str(path),
        at=str(at),
        entries=entries,
        reason=str(reason) if reason else None,
    )


def last_good(config: Config) -> Recorded | None:
    """Blocking (file reads)."""
    return _read_record(config.last_good_file)


def last_rollback(config: Config) -> Recorded | None:
    """Blocking (file reads)."""
    return _read_record(config.last_rollback_file)


async def in_use(client: httpx.AsyncClient, config: Config) -> InUse:
    """The model file and build llama-server says it runs."""
    try:
        props = await discovery.llama_props(client, config)
    except (httpx.HTTPError, ValueError) as exc:
        return InUse(error=f"llama-server /props: {type(exc).__name__}")
    if not isinstance(props, dict):
        return InUse(error="llama-server /props: not a JSON object")
    model = props.get("model_path")
    build = props.get("build_info")
    return InUse(
        model_path=model if isinstance(model, str) else None,
        build=build if isinstance(build, str) else None,
    )
