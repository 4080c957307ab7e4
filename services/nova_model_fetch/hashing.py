"""sha256 of files and validation of sha256 strings."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_READ_BLOCK = 4 * 1024 * 1024


def normalize_sha256(value: str) -> str:
    """Lower-case a sha256 hex digest (an optional ``sha256:`` prefix is accepted)."""
    digest = value.strip().lower().removeprefix("sha256:")
    if not _SHA256_RE.fullmatch(digest):
        raise ValueError(f"not a sha256 hex digest (64 hex characters): {value!r}")
    return digest


def looks_like_sha256(value: str | None) -> bool:
    return value is not None and _SHA256_RE.fullmatch(value.lower()) is not None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()
