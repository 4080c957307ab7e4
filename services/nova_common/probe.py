"""One HTTP health request with a short timeout, whose failures are values, not exceptions.

nova-diagnose, nova-watchdog and the status page all ask local services "do you answer?". A
SIGSTOPped or wedged server accepts the connection (the kernel does) but never answers, so the
timeout is the probe; a refused connection, a timeout and an HTTP error status are three
different findings, and each caller words them its own way from one :class:`ProbeOutcome`.
Local probes ignore proxy variables (``trust_env=False``): they must reach 127.0.0.1 directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class ProbeOutcome:
    """The answer (``response``), or the ``exception`` that came instead of one."""

    method: str
    url: str
    timeout_s: float
    response: httpx.Response | None = None
    elapsed_ms: int | None = None
    exception: httpx.HTTPError | None = None

    @property
    def answered(self) -> bool:
        return self.response is not None

    @property
    def ok(self) -> bool:
        """An answer with a 2xx status."""
        return self.response is not None and self.response.is_success

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    @property
    def timed_out(self) -> bool:
        return isinstance(self.exception, httpx.TimeoutException)

    @property
    def error(self) -> str | None:
        """The exception's class name (``ConnectError``, ``ReadTimeout``, ...), if any."""
        return type(self.exception).__name__ if self.exception is not None else None

    @property
    def no_answer(self) -> str:
        """Why no answer came, in words ("" when one did)."""
        if self.timed_out:
            return f"no answer within {self.timeout_s:g} s"
        return f"unreachable ({self.error})" if self.error else ""


def _outcome(
    method: str, url: str, timeout: float, start: float, answer: httpx.Response | httpx.HTTPError
) -> ProbeOutcome:
    if isinstance(answer, httpx.HTTPError):
        return ProbeOutcome(method, url, timeout, exception=answer)
    elapsed = int((time.monotonic() - start) * 1000)
    return ProbeOutcome(method, url, timeout, response=answer, elapsed_ms=elapsed)


def probe(
    method: str,
    url: str,
    timeout: float,
    *,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> ProbeOutcome:
    """Send one request on a fresh client (no proxies) and report what happened."""
    start = time.monotonic()
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            response = client.request(method, url, headers=headers, json=json)
    except httpx.HTTPError as exc:
        return _outcome(method, url, timeout, start, exc)
    return _outcome(method, url, timeout, start, response)


async def probe_async(
    client: httpx.AsyncClient, method: str, url: str, timeout: float, **request: Any
) -> ProbeOutcome:
    """:func:`probe` on the caller's async client (a service keeps one for its probes);
    ``request`` takes the same keywords (``headers``, ``json``)."""
    start = time.monotonic()
    try:
        response = await client.request(method, url, timeout=timeout, **request)
    except httpx.HTTPError as exc:
        return _outcome(method, url, timeout, start, exc)
    return _outcome(method, url, timeout, start, response)
