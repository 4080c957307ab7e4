"""Provider API keys on disk: one 0600 file per provider under <state>/secrets/.

Keys are written atomically (temporary file in the same directory, fsync, os.replace) and are
never returned or logged: callers only ever see ``mask()``-ed forms.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from .config import PROVIDERS, Config, Provider

log = logging.getLogger(__name__)


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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_secret_file(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` atomically with mode 0600 (never briefly wider)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def store_key(secrets_dir: Path, provider: Provider, key: str) -> bool:
    """Store ``key``; False (and nothing written) when the same key is already stored."""
    if read_key(secrets_dir, provider) == key:
        return False
    _ensure_dir(secrets_dir)
    write_secret_file(key_path(secrets_dir, provider), key + "\n")
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
    _fsync_dir(secrets_dir)
    return True


def key_mtime(secrets_dir: Path, provider: Provider) -> str | None:
    try:
        stamp = key_path(secrets_dir, provider).stat().st_mtime
    except FileNotFoundError:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


def on_keys_changed(config: Config, provider: Provider, action: str) -> None:
    """After a key was stored, replaced or removed: re-render the gateway config.

    The config changes only when Google keys come or go; a replaced key is picked up by the
    path unit that watches the key file. Never pass the key itself here.
    """
    from . import gateway_config  # imported here: gateway_config imports this module

    log.info("api key for %s %s", provider, action)
    if provider != "google" or not gateway_config.enabled(config):
        return
    try:
        if gateway_config.apply(config):
            log.info("gateway config re-rendered after the %s key was %s", provider, action)
    except gateway_config.GatewayConfigError as exc:
        log.error("gateway config not re-rendered: %s", exc)
