"""Secrets a unit receives from systemd (``LoadCredential=NAME:PATH``) or from a named file.

systemd copies each credential into ``$CREDENTIALS_DIRECTORY`` when the unit starts; the copy
does not change while the process runs (a rotated secret reaches a unit when it restarts).
"""

from __future__ import annotations

import os
from pathlib import Path

# llama-server's API key, under this name in every unit that calls llama-server
# (LoadCredential=llama-api-key:...); root's CLIs read the host's file.
LLAMA_API_KEY = "llama-api-key"
LLAMA_API_KEY_FILE = Path("/etc/nova/secrets/llama-api-key")


def credential_path(name: str) -> Path | None:
    """Where the credential ``name`` lies, if the unit has credentials at all."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY", "").strip()
    return Path(directory) / name if directory else None


def read_secret(path: Path | None) -> str | None:
    """The secret in ``path`` without surrounding whitespace; None when unset, unreadable or
    empty."""
    if path is None:
        return None
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return value or None


def llama_api_key_path() -> Path:
    """Where this process finds llama-server's API key: its unit's credential, else the
    host's file (root's CLIs: nova-diagnose, nova-watchdog by hand)."""
    return credential_path(LLAMA_API_KEY) or LLAMA_API_KEY_FILE


def bearer(secret: str | None) -> dict[str, str]:
    """The Authorization header carrying ``secret``; none without one."""
    return {"Authorization": f"Bearer {secret}"} if secret else {}
