"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

One guarantee, for every writer in the services (keys, tokens, the gateway config, state files,
stamps, env files, support bundles, models): the data goes to a temporary file in the target's
own directory (same filesystem, so the rename is atomic), whose mode is set before a byte is
written (a secret is never briefly readable by others, whatever the umask); the file is flushed
and fsynced, renamed over the target, and the directory is fsynced so the rename itself survives
a power cut. On any error the temporary file is removed and the old target is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks inside ``directory`` durable."""
    _fsync(directory, os.O_DIRECTORY)


@contextlib.contextmanager
def atomic_writer(path: Path, *, mode: int) -> Iterator[BinaryIO]:
    """Write ``path`` atomically through a binary stream (for writers that stream, e.g. tar).

    The stream is a temporary file beside ``path`` created with ``mode`` (umask ignored); when
    the block ends without an exception it is fsynced and renamed over ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, mode)  # before any data, and whatever the umask
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: str | bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` (str is written as UTF-8), mode ``mode``, atomically."""
    with atomic_writer(path, mode=mode) as stream:
        stream.write(data.encode("utf-8") if isinstance(data, str) else data)


def move_into_place(source: Path, dest: Path, *, mode: int) -> None:
    """Atomically replace ``dest`` with ``source``, a file already on dest's filesystem.

    The same guarantee as :func:`write_atomic` for a file written elsewhere (a download, a
    copy): mode set and data fsynced before the rename, the directory fsynced after it.
    """
    os.chmod(source, mode)
    _fsync(source, os.O_NOFOLLOW)
    os.replace(source, dest)
    fsync_dir(Path(dest).parent)
