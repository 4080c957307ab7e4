"""Move a verified file into place atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from .stamp import remove_stamp

PARTIAL_SUFFIX = ".partial"


def same_filesystem(path: Path, directory: Path) -> bool:
    return path.stat().st_dev == directory.stat().st_dev


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place_file(source: Path, dest: Path, *, keep_source: bool, mode: int) -> None:
    """Put ``source`` at ``dest`` so that dest is never seen half-written.

    Same filesystem and not ``keep_source``: chmod, fsync and ``os.replace``. Otherwise copy to
    ``dest.partial`` beside dest, fsync, ``os.replace``; the source is then removed unless
    ``keep_source``. The stamp of the old dest is removed first (the caller writes a new one).
    """
    if not keep_source and same_filesystem(source, dest.parent):
        os.chmod(source, mode)
        fsync_file(source)
        remove_stamp(dest)
        os.replace(source, dest)
        fsync_dir(dest.parent)
        return

    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    try:
        shutil.copyfile(source, partial)
        os.chmod(partial, mode)
        fsync_file(partial)
        remove_stamp(dest)
        os.replace(partial, dest)
        fsync_dir(dest.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    if not keep_source:
        source.unlink()
