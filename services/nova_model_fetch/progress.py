"""Sparse download progress on stderr (no tqdm bars in logs)."""

from __future__ import annotations

import os
import sys
import time
from typing import BinaryIO

from .diskspace import human


def redact(text: str) -> str:
    """Hide the Hub token should it ever appear in a message."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        token = os.environ.get(name, "").strip()
        if len(token) >= 4:
            text = text.replace(token, "***")
    return text


def log(message: str) -> None:
    print(f"nova-model-fetch: {redact(message)}", file=sys.stderr, flush=True)


class ProgressFile:
    """Wrap the partial file handed to ``http_get``: flush every chunk, report now and then.

    A line is printed at each 10 % step (or every ``interval`` seconds when the size is
    unknown). Each chunk is flushed so that a killed process leaves what it received on disk,
    ready to be resumed.
    """

    def __init__(
        self, f: BinaryIO, *, total: int | None, initial: int, interval: float = 60.0
    ) -> None:
        self._f = f
        self._total = total
        self.written = initial
        self._interval = interval
        self._last_time = time.monotonic()
        self._last_step = self._step()

    def _step(self) -> int:
        return self.written * 10 // self._total if self._total else 0

    def write(self, data: bytes) -> int:
        n = self._f.write(data)
        self._f.flush()
        self.written += len(data)
        now = time.monotonic()
        step = self._step()
        if step > self._last_step or (now - self._last_time >= self._interval):
            self._last_step = step
            self._last_time = now
            if self._total:
                log(f"downloaded {human(self.written)} of {human(self._total)} ({step * 10}%)")
            else:
                log(f"downloaded {human(self.written)}")
        return n

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        result = self._f.truncate(size)
        self.written = self._f.tell()
        return result

    def flush(self) -> None:
        self._f.flush()
