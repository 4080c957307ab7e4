"""Provider API keys on disk: one 0600 file per provider under <state>/secrets/.

Keys are written atomically and are never returned or logged: callers only ever see
``mask()``-ed forms. What a stored or removed key sets off (the gateway config) is
gateway/key_events.py's business, not this module's.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from nova_common.files import fsync_dir, write_atomic

from ..core.config import PROVIDERS, Provider


def key_path(secrets_dir: Path, provider: Provider) -> Path:
    if provider not in PROVIDERS:  # the route's type already guarantees it; belt and braces
        raise ValueError("unknown provider")
    return secrets_dir / f"{provider}_api_key"


def mask(key: str) -> str:
    """``AIza…3xYz`` for long keys; short ones are hidden entirely."""
    if len(key) < 12:
        return "…"
    return f"{key[:4]}…{key[-4:]}"


def _ensure_dir(secrets_dir: Path) -> None:
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        os.chmod(secrets_dir, 0o700)


def store_key(secrets_dir: Path, provider: Provider, key: str) -> bool:
    """Store ``key``; False (and nothing written) when the same key is already stored."""
    if read_key(secrets_dir, provider) == key:
        return False
    _ensure_dir(secrets_dir)
    write_atomic(key_path(secrets_dir, provider), key + "\n", mode=0o600)
    return True


def read_key(secrets_dir: Path, provider: Provider) -> str | None:
    try:
        key = key_path(secrets_dir, provider).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return key or None


def has_key(secrets_dir: Path, provider: Provider) -> bool:
    return read_key(secrets_dir, provider) is not None


def delete_key(secrets_dir: Path, provider: Provider) -> bool:
    """Remove the stored key; True when there was one."""
    try:
        key_path(secrets_dir, provider).unlink()
    except FileNotFoundError:
        return False
    fsync_dir(secrets_dir)
    return True


def key_mtime(secrets_dir: Path, provider: Provider) -> str | None:
    try:
        stamp = key_path(secrets_dir, provider).stat().st_mtime
    except FileNotFoundError:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
