"""Free-space check before writing a large file."""

from __future__ import annotations

import shutil
from pathlib import Path

from .errors import InsufficientSpaceError

DEFAULT_RESERVE_BYTES = 256 * 1024 * 1024


def human(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


def ensure_free_space(directory: Path, *, needed: int, reserve: int, what: str) -> None:
    """Fail unless ``directory``'s filesystem has ``needed + reserve`` bytes free."""
    free = shutil.disk_usage(directory).free
    required = max(needed, 0) + reserve
    if free < required:
        raise InsufficientSpaceError(
            f"not enough free disk space in {directory}: {what} needs {needed} bytes"
            f" + {reserve} bytes reserve = {required} bytes ({human(required)}),"
            f" but only {free} bytes ({human(free)}) are free"
        )
