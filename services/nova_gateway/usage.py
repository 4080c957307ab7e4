"""Usage counts, recorded off the request path and sent to the settings service in batches.

Each gateway worker process adds every finished request to an in-memory table keyed by (user,
UTC day, model); a background task sends the table to the settings service
(``POST /internal/usage``, authenticated with the master key, which both hold) every
``NOVA_USAGE_FLUSH_S`` seconds, and once more when the worker stops (``systemctl stop`` or
restart: at the start of LiteLLM's shutdown, after letting LiteLLM run the callbacks it still
has queued; ``send_before_litellm_shuts_down``). What a crash (SIGKILL, OOM) of a worker can
lose: the counts of the requests that finished since its last send (at most one flush interval,
1 s by default) and those in flight. If the settings service does not answer, the counts are
kept and sent with the next batch; past ``MAX_PENDING_ROWS`` distinct rows the oldest are
dropped, with an error in the journal.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from dataclasses import dataclass, field

import httpx

from nova_common.gateway_identity import utc_day

from .settings import settings

log = logging.getLogger("nova_gateway.usage")

BATCH_ROWS = 50  # rows per POST: well under the settings service's 16 KiB body limit
MAX_PENDING_ROWS = 10_000
COUNTERS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost")


@dataclass
class _Row:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0

    def add(self, other: _Row) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class UsageRecorder:
    pending: dict[tuple[int, str, str], _Row] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _task: asyncio.Task[None] | None = None

    def add(
        self,
        user_id: int,
        model: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost: float = 0.0,
        error: bool = False,
    ) -> None:
        """Count one finished request (cheap: a dict update under a lock)."""
        row = _Row(1, int(error), prompt_tokens, completion_tokens, cost)
        with self._lock:
            self.pending.setdefault((user_id, utc_day(), model), _Row()).add(row)
        self._ensure_sender()

    def _ensure_sender(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop here (sync caller): the exit flush sends it
        self._task = loop.create_task(self._send_forever())

    def _take(self) -> dict[tuple[int, str, str], _Row]:
        with self._lock:
            taken, self.pending = self.pending, {}
        return taken

    def _put_back(self, rows: dict[tuple[int, str, str], _Row]) -> None:
        with self._lock:
            for key, row in rows.items():
                self.pending.setdefault(key, _Row()).add(row)
            overflow = len(self.pending) - MAX_PENDING_ROWS
            if overflow > 0:
                for key in list(self.pending)[:overflow]:
                    del self.pending[key]
                log.error("usage: settings service unreachable; %d rows dropped", overflow)

    @staticmethod
    def _batches(
        rows: dict[tuple[int, str, str], _Row],
    ) -> list[tuple[dict[tuple[int, str, str], _Row], dict[str, object]]]:
        """(the rows, the POST body) per batch of at most BATCH_ROWS rows."""
        keys = list(rows)
        out = []
        for i in range(0, len(keys), BATCH_ROWS):
            part = {k: rows[k] for k in keys[i : i + BATCH_ROWS]}
            records = [
                {"user_id": u, "day": d, "model": m, **{c: getattr(r, c) for c in COUNTERS}}
                for (u, d, m), r in part.items()
            ]
            out.append((part, {"records": records}))
        return out

    def _request(self) -> tuple[str, dict[str, str]]:
        conf = settings()
        return (
            f"{conf.settings_url}/internal/usage",
            {"authorization": f"Bearer {conf.master_key() or ''}"},
        )

    async def flush(self, client: httpx.AsyncClient) -> None:
        rows = self._take()
        if not rows:
            return
        url, headers = self._request()
        batches = self._batches(rows)
        sent = 0
        try:
            for _, body in batches:
                response = await client.post(url, json=body, headers=headers)
                response.raise_for_status()
                sent += 1
        except httpx.HTTPError as exc:
            log.warning("usage: not sent yet (%s); kept for the next batch", type(exc).__name__)
        finally:
            # Each POST is one transaction: a refused (or interrupted) one wrote nothing, so
            # it and the ones after it are kept. (Only a lost answer to a POST that landed
            # counts twice: the safer way to be wrong for budgets.)
            for part, _ in batches[sent:]:
                self._put_back(part)

    async def _send_forever(self) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            while True:
                await asyncio.sleep(settings().usage_flush_s)
                await self.flush(client)

    async def flush_at_shutdown(self) -> None:
        """The worker is stopping (its requests are done): count what LiteLLM still has
        queued, and send everything."""
        await _drain_litellm_logging()
        async with httpx.AsyncClient(trust_env=False, timeout=3.0) as client:
            await self.flush(client)

    def flush_at_exit(self) -> None:
        """A normal interpreter exit (a uvicorn worker stopped by SIGTERM never gets here)."""
        rows = self._take()
        if not rows:
            return
        url, headers = self._request()
        try:
            with httpx.Client(trust_env=False, timeout=3.0) as client:
                for _, body in self._batches(rows):
                    client.post(url, json=body, headers=headers).raise_for_status()
        except httpx.HTTPError as exc:
            log.error("usage: %d rows not sent at exit (%s)", len(rows), type(exc).__name__)


async def _drain_litellm_logging(timeout_s: float = 3.0) -> None:
    """Let LiteLLM run the success/failure callbacks it still has queued, so that the last
    requests are counted before the final send (without this a restart lost them: 0 of 3)."""
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except ImportError:  # not inside the gateway (the unit tests)
        return
    try:
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), timeout_s)
    except Exception as exc:  # never let the shutdown path fail
        log.warning("usage: LiteLLM's pending callbacks not drained (%s)", type(exc).__name__)


def send_before_litellm_shuts_down() -> bool:
    """Run ``recorder.flush_at_shutdown`` at the start of LiteLLM's shutdown.

    A uvicorn worker stopped by SIGTERM finishes its requests and its lifespan, and then dies
    of the re-raised signal: no atexit handler, finalizer or task cancellation runs (seen: a
    restart right after 3 requests recorded none). The lifespan's shutdown is the last place
    that runs, and LiteLLM offers callbacks no hook there, so its shutdown function (looked up
    by name when the lifespan ends; LiteLLM 1.108.7) is wrapped. False (and a warning) if it
    is not there: usage then keeps the crash bound of one interval on a stop too.
    """
    try:
        from litellm.proxy import proxy_server
    except ImportError:  # not inside the gateway
        return False
    original = getattr(proxy_server, "proxy_shutdown_event", None)
    if original is None or getattr(original, "_nova_usage", False):
        if original is None:
            log.warning("usage: LiteLLM's shutdown hook not found; a stop may lose 1 s of usage")
        return original is not None

    async def shutdown_after_sending_usage(*args: object, **kwargs: object) -> object:
        try:
            await recorder.flush_at_shutdown()
        except Exception as exc:  # the shutdown must go on
            log.error("usage: not sent at shutdown (%s)", type(exc).__name__)
        return await original(*args, **kwargs)

    shutdown_after_sending_usage._nova_usage = True  # type: ignore[attr-defined]
    proxy_server.proxy_shutdown_event = shutdown_after_sending_usage
    return True


recorder = UsageRecorder()
atexit.register(recorder.flush_at_exit)
