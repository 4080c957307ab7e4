"""Journal priorities for lines written to stderr.

systemd's journal reads a ``<N>`` syslog priority prefix at the start of each stderr line
(SyslogLevelPrefix=, on by default). Python's logging writes none, so every line lands at
priority "info" and ``journalctl -p err`` misses real errors. ``install()`` makes every
``logging.StreamHandler`` prefix its lines with the record's priority, but only when stderr is
connected to the journal (``JOURNAL_STREAM`` is set), so terminals and tests see plain lines.
Tools that print their own lines (nova-watchdog) use :func:`log` with the constants below.

The settings service calls ``install()``; the gateway's venv loads this module at interpreter
start through a ``.pth`` file (the litellm role), because LiteLLM and uvicorn create their own
handlers. So: stdlib only, and nothing imported from the rest of :mod:`nova_common`.
"""

from __future__ import annotations

import logging
import os
import sys

EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)

_PRIORITIES = (
    (logging.CRITICAL, CRIT),
    (logging.ERROR, ERR),
    (logging.WARNING, WARNING),
    (logging.INFO, INFO),
)


def priority(levelno: int) -> int:
    """The syslog priority for a ``logging`` level number."""
    for threshold, value in _PRIORITIES:
        if levelno >= threshold:
            return value
    return DEBUG


def log(priority: int, message: str) -> None:
    """One stderr line with its ``<N>`` prefix, whether or not stderr is the journal."""
    print(f"<{priority}>{message}", file=sys.stderr, flush=True)


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
