"""Move a verified file into place atomically (:mod:`nova_common.files`' guarantee)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from nova_common.files import move_into_place

from .stamp import remove_stamp

PARTIAL_SUFFIX = ".partial"


def same_filesystem(path: Path, directory: Path) -> bool:
    return path.stat().st_dev == directory.stat().st_dev


def place_file(source: Path, dest: Path, *, keep_source: bool, mode: int) -> None:
    """Put ``source`` at ``dest`` so that dest is never seen half-written.

    Same filesystem and not ``keep_source``: moved into place (mode, fsync, rename, directory
    fsync). Otherwise copied to ``dest.partial`` beside dest and that moved into place; the
    source is then removed unless ``keep_source``. The stamp of the old dest is removed first
    (the caller writes a new one).
    """
    if not keep_source and same_filesystem(source, dest.parent):
        remove_stamp(dest)
        move_into_place(source, dest, mode=mode)
        return

    partial = dest.with_name(dest.name + PARTIAL_SUFFIX)
    try:
        shutil.copyfile(source, partial)
        remove_stamp(dest)
        move_into_place(partial, dest, mode=mode)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    if not keep_source:
        source.unlink()
