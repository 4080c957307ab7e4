"""Usage counts, recorded off the request path and sent to the settings service in batches.

Each gateway worker process adds every finished request to an in-memory table keyed by (user,
UTC day, model); a background task sends the table to the settings service
(``POST /internal/usage``, authenticated with the master key, which both hold) every
``NOVA_USAGE_FLUSH_S`` seconds, and once more when the process exits normally (``systemctl
stop``/restart). What a crash (SIGKILL, OOM) of a worker can lose: the counts of the requests
that finished since its last send (at most one flush interval, 1 s by default) and those in
flight. If the settings service does not answer, the counts are kept and sent with the next
batch; past ``MAX_PENDING_ROWS`` distinct rows the oldest are dropped, with an error in the
journal.
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
    _exiting: bool = False

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
        if self._exiting or (self._task is not None and not self._task.done()):
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
        for index, (_, body) in enumerate(batches):
            try:
                response = await client.post(url, json=body, headers=headers)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                # Each POST is one transaction: a refused one wrote nothing, so it and the
                # ones after it are kept. (Only a lost answer to a POST that landed counts
                # twice: the safer way to be wrong for budgets.)
                log.warning("usage: not sent yet (%s); kept for the next batch", type(exc).__name__)
                for part, _ in batches[index:]:
                    self._put_back(part)
                return

    async def _send_forever(self) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            while True:
                await asyncio.sleep(settings().usage_flush_s)
                await self.flush(client)

    def flush_at_exit(self) -> None:
        self._exiting = True  # what the drain counts is sent below, not by a new task
        _drain_litellm_logging()
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


def _drain_litellm_logging() -> None:
    """Run the success/failure callbacks LiteLLM still holds, so that they count here first.

    LiteLLM queues callbacks on its logging worker and runs what is left at exit from its own
    atexit handler; atexit runs handlers last-registered-first, so ours would send before the
    last requests were counted (seen: 2 of 3 requests reached the settings service after a
    restart). ``_flush_on_exit`` is that handler (LiteLLM 1.108.7); a second call is a no-op.
    """
    try:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
    except ImportError:  # not inside the gateway (the unit tests)
        return
    try:
        GLOBAL_LOGGING_WORKER._flush_on_exit()
    except Exception as exc:  # never let the exit path fail
        log.warning("usage: LiteLLM's pending callbacks not drained (%s)", type(exc).__name__)


recorder = UsageRecorder()
atexit.register(recorder.flush_at_exit)
