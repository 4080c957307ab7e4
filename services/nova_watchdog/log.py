"""Log lines on stderr with journald's priority prefix (SyslogLevelPrefix=yes, the default)."""

from __future__ import annotations

import sys

ERR, WARNING, NOTICE, INFO = 3, 4, 5, 6


def log(priority: int, message: str) -> None:
    print(f"<{priority}>{message}", file=sys.stderr, flush=True)
