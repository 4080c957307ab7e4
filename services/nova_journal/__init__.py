"""Journal priorities for Python log records written to stderr.

systemd's journal reads a ``<N>`` syslog priority prefix at the start of each stderr line
(SyslogLevelPrefix=, on by default). Python's logging writes none, so every line lands at
priority "info" and ``journalctl -p err`` misses real errors. ``install()`` makes every
``logging.StreamHandler`` prefix its lines with the record's priority, but only when stderr is
connected to the journal (``JOURNAL_STREAM`` is set), so terminals and tests see plain lines.

The settings service calls it; the gateway's venv loads it at interpreter start through a
``.pth`` file, because LiteLLM and uvicorn create their own handlers.
"""

from __future__ import annotations

import logging
import os

_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY = 7


def priority(levelno: int) -> int:
    for threshold, value in _PRIORITIES:
        if levelno >= threshold:
            return value
    return _DEBUG_PRIORITY


def install(force: bool = False) -> bool:
    """Patch StreamHandler.format once; True if the journal prefix is now active."""
    if not (force or os.environ.get("JOURNAL_STREAM")):
        return False
    if getattr(logging.StreamHandler, "_nova_journal", False):
        return True
    plain_format = logging.StreamHandler.format

    def format_with_priority(self: logging.StreamHandler, record: logging.LogRecord) -> str:
        return f"<{priority(record.levelno)}>{plain_format(self, record)}"

    logging.StreamHandler.format = format_with_priority  # type: ignore[method-assign]
    logging.StreamHandler._nova_journal = True  # type: ignore[attr-defined]
    return True
