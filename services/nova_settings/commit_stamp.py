"""A cheap "has anything been committed?" check for a SQLite database in WAL mode.

Every commit, by any connection in any process, rewrites the WAL-index header at the start of
the database's ``-shm`` file (a documented, stable format: https://www.sqlite.org/walformat.html,
section 2.2). The header holds a change counter, the last valid frame and checksums, and it is
written when the commit becomes visible to readers. Reading it through a shared mapping costs a
memory copy, no system call and no lock, which is what lets the hot read path cache the
caller's row and still see every commit at once (see auth.UserLookup).

The header is written twice, second copy first; like SQLite's own readers, a read whose copies
differ (a writer was mid-update) is "unknown", never "unchanged".
"""

from __future__ import annotations

import logging
import mmap
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER_BYTES = 48  # one copy of the WAL-index header (WalIndexHdr)


class CommitStamp:
    """``read()`` gives a value that changes whenever a transaction commits, or None when that
    cannot be told (database not in WAL mode, or a header read torn by a writer)."""

    def __init__(self, anchor: sqlite3.Connection | None, header: mmap.mmap | None) -> None:
        self._anchor = anchor
        self._header = header

    @classmethod
    def open(cls, db_path: Path | str) -> CommitStamp:
        """Map ``<db>-shm``; a stamp that always reads None if the database is not in WAL mode.

        The anchor connection stays open for the stamp's lifetime: SQLite deletes the ``-shm``
        file when the last connection to the database closes, and a mapping of a deleted file
        would never change again.
        """
        anchor = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
        try:
            anchor.execute("PRAGMA query_only = 1")
            (mode,) = anchor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                raise ValueError(f"the database is not in WAL mode ({mode})")
            # A read maps the wal-index (and creates -shm if this is the first connection).
            anchor.execute("SELECT count(*) FROM sqlite_master").fetchall()
            with open(f"{db_path}-shm", "rb") as shm:
                header = mmap.mmap(shm.fileno(), 2 * _HEADER_BYTES, access=mmap.ACCESS_READ)
        except (OSError, ValueError, sqlite3.Error) as exc:
            log.warning("cannot read the WAL-index header (%s): the hot-path cache is off", exc)
            anchor.close()
            return cls(None, None)
        return cls(anchor, header)

    @property
    def enabled(self) -> bool:
        return self._header is not None

    def read(self) -> bytes | None:
        header = self._header
        if header is None:
            return None
        first = header[:_HEADER_BYTES]
        if first != header[_HEADER_BYTES : 2 * _HEADER_BYTES]:
            return None  # a commit is being published right now
        return first

    def close(self) -> None:
        if self._header is not None:
            self._header.close()
            self._header = None
        if self._anchor is not None:
            self._anchor.close()
            self._anchor = None
