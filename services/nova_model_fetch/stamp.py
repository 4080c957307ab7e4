"""Verify a file against a sha256, remembering the result in a stamp file beside it.

``PATH.sha256-stamp`` holds ``{"sha256", "size", "mtime_ns"}`` of PATH as last hashed. The stamp
is trusted only while PATH's size and mtime_ns are unchanged; otherwise PATH is hashed again and
the stamp rewritten. This keeps repeated playbook runs from re-reading multi-GB models.
"""

from __future__ import annotations

import contextlib
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from nova_common.files import write_atomic

from .errors import FetchError
from .hashing import sha256_file

STAMP_SUFFIX = ".sha256-stamp"


class Stamp(BaseModel):
    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Verification:
    exists: bool
    matches: bool
    actual_sha256: str | None
    size: int | None
    rehashed: bool


def stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + STAMP_SUFFIX)


def read_stamp(dest: Path) -> Stamp | None:
    try:
        return Stamp.model_validate_json(stamp_path(dest).read_bytes())
    except (OSError, ValidationError, ValueError):
        return None


def write_stamp(dest: Path, sha256: str) -> None:
    """Record ``sha256`` for dest's current size and mtime (best effort, atomic)."""
    st = dest.stat()
    stamp = Stamp(sha256=sha256, size=st.st_size, mtime_ns=st.st_mtime_ns)
    target = stamp_path(dest)
    try:
        write_atomic(target, stamp.model_dump_json() + "\n", mode=0o644)
    except OSError as e:
        print(f"nova-model-fetch: warning: could not write {target}: {e}", file=sys.stderr)


def remove_stamp(dest: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        stamp_path(dest).unlink()


def verify_file(dest: Path, expected_sha256: str) -> Verification:
    """Does dest exist with the expected sha256? Uses and refreshes the stamp."""
    try:
        st = dest.stat()
    except FileNotFoundError:
        return Verification(False, False, None, None, rehashed=False)
    except OSError as e:
        raise FetchError(f"cannot stat {dest}: {e}") from e
    if not stat.S_ISREG(st.st_mode):
        raise FetchError(f"{dest} exists but is not a regular file")

    stamp = read_stamp(dest)
    if stamp is not None and stamp.size == st.st_size and stamp.mtime_ns == st.st_mtime_ns:
        actual = stamp.sha256
        rehashed = False
    else:
        try:
            actual = sha256_file(dest)
        except OSError as e:
            raise FetchError(f"cannot read {dest}: {e}") from e
        write_stamp(dest, actual)
        rehashed = True
    return Verification(True, actual == expected_sha256, actual, st.st_size, rehashed)
