"""Which models are loaded: one child llama-server each, loaded on demand, evicted by memory.

Rules, each decision logged (the journal, through stderr):

* A request for a model that is not loaded loads it. If its footprint does not fit next to the
  loaded ones, the least recently used models are stopped first, but never a pinned one and
  never one with a request in flight: then the load waits for those requests (at most
  ``load_timeout_s`` in all, loading included). A model that cannot fit even with every
  evictable model gone is refused at once, with the figures.
* Loads are decided one at a time (two loads deciding at once could both count the same free
  memory); requests for loaded models never wait for that.
* A child that exits on its own is a crash: its model is marked unloaded with the exit status,
  its requests in flight fail, every other model goes on; the next request loads it again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx

from nova_common.ports import port_is_free
from nova_gpu_sizing.vram import MiB

from .config import ModelEntry, ResidencyConfig
from .footprint import Budget, Footprint

log = logging.getLogger("nova-model-residency")

State = Literal["unloaded", "loading", "loaded"]


class NotServable(Exception):
    """The model cannot be served now; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Slot:
    """One model and its child process."""

    model: ModelEntry
    footprint: Footprint
    state: State = "unloaded"
    process: asyncio.subprocess.Process | None = None
    ready: asyncio.Future[None] | None = None
    in_flight: int = 0
    last_used: float = 0.0
    loads: int = 0
    evictions: int = 0
    crashes: int = 0
    # Why it is not loaded (the last failure or eviction); empty while loaded.
    reason: str = "not loaded yet"
    load_seconds: float | None = None
    # The last failed load or crash; cleared by a load that works.
    last_error: str | None = None
    stopping: bool = field(default=False, repr=False)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def counted(self) -> bool:
        """Whether its memory counts as taken (loaded, or being loaded)."""
        return self.state != "unloaded"


class Residency:
    def __init__(
        self,
        config: ResidencyConfig,
        budget: Budget,
        footprints: dict[str, Footprint],
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.budget = budget
        self.client = client
        self.clock = clock
        self.slots = {m.name: Slot(m, footprints[m.name]) for m in config.models}
        self._decide = asyncio.Lock()
        self._released = asyncio.Event()

    # -- policy (no I/O) ------------------------------------------------------------------

    def used(self) -> int:
        return sum(s.footprint.bytes for s in self.slots.values() if s.counted)

    def plan_room(self, name: str) -> tuple[list[str], bool]:
        """The models to stop so that ``name`` fits (least recently used first) and whether
        that is enough now. ``([], True)``: it fits as things are. Not enough now but possible
        later (busy models): ``(victims, False)``. Raises NotServable when it can never fit."""
        want = self.slots[name].footprint.bytes
        free = self.budget.bytes - self.used()
        if want <= free:
            return [], True
        others = [s for s in self.slots.values() if s.counted and s.name != name]
        evictable = [s for s in others if not s.model.pin]
        if want > free + sum(s.footprint.bytes for s in evictable):
            pinned = [s.name for s in others if s.model.pin]
            raise NotServable(
                507,
                f"model {name!r} needs {want // MiB} MiB; the budget is "
                f"{self.budget.bytes // MiB} MiB and pinned models ({', '.join(pinned) or 'none'})"
                f" keep {sum(s.footprint.bytes for s in others if s.model.pin) // MiB} MiB",
            )
        # Idle models, least recently used first; busy ones are waited for, not stopped.
        victims: list[str] = []
        for slot in sorted(evictable, key=lambda s: s.last_used):
            if free >= want:
                break
            if slot.in_flight or slot.state == "loading":
                continue
            victims.append(slot.name)
            free += slot.footprint.bytes
        return victims, free >= want

    # -- requests ---------------------------------------------------------------------------

    async def acquire(self, name: str) -> ModelEntry:
        """Count a request for ``name`` in flight, loading the model first if needed. Pair
        with :meth:`release`."""
        slot = self.slots.get(name)
        if slot is None:
            served = ", ".join(self.slots)
            raise NotServable(404, f"model {name!r} is not served here (served: {served})")
        deadline = self.clock() + self.config.load_timeout_s
        while slot.state != "loaded":
            if slot.state == "loading" and slot.ready is not None:
                await self._await_ready(slot, deadline)
                continue
            await self._load(slot, deadline)
        slot.in_flight += 1
        slot.last_used = self.clock()
        return slot.model

    def release(self, name: str) -> None:
        slot = self.slots[name]
        slot.in_flight = max(0, slot.in_flight - 1)
        slot.last_used = self.clock()
        self._released.set()

    async def _await_ready(self, slot: Slot, deadline: float) -> None:
        assert slot.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(slot.ready), max(0.0, deadline - self.clock()))
        except TimeoutError:
            raise NotServable(
                503, f"model {slot.name!r} did not finish loading within the wait"
            ) from None

    # -- loading and stopping ---------------------------------------------------------------

    async def _load(self, slot: Slot, deadline: float) -> None:
        async with self._decide:
            if slot.state != "unloaded":
                return
            while True:
                victims, enough = self.plan_room(slot.name)
                for victim in victims:
                    await self.stop(
                        victim, f"evicted (least recently used) to make room for {slot.name!r}"
                    )
                    self.slots[victim].evictions += 1
                if enough:
                    break
                left = deadline - self.clock()
                if left <= 0:
                    busy = [s.name for s in self.slots.values() if s.in_flight]
                    raise NotServable(
                        503,
                        f"no room for model {slot.name!r} within the wait: models with "
                        f"requests in flight ({', '.join(busy)}) still hold the memory",
                    )
                log.info("model %s waits for room: busy models hold the memory", slot.name)
                self._released.clear()
                try:
                    await asyncio.wait_for(self._released.wait(), left)
                except TimeoutError:
                    pass
            await self._start(slot, deadline)

    async def _start(self, slot: Slot, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        log.info(
            "loading model %s (%s; %s; %d of %d MiB in use before it)",
            slot.name,
            slot.model.quantization or "quantization not given",
            slot.footprint.detail,
            self.used() // MiB,
            self.budget.bytes // MiB,
        )
        slot.state = "loading"
        slot.ready = loop.create_future()
        slot.stopping = False
        started = self.clock()
        if not port_is_free(slot.model.port):
            why = f"its port {slot.model.port} is taken by another process"
            self._failed(slot, why)
            raise NotServable(503, f"model {slot.name!r} could not start: {why}")
        try:
            slot.process = await asyncio.create_subprocess_exec(
                *slot.model.command, stdin=asyncio.subprocess.DEVNULL, start_new_session=True
            )
        except OSError as e:
            self._failed(slot, f"could not start: {e}")
            raise NotServable(503, f"model {slot.name!r} could not start: {e}") from e
        process = slot.process
        watcher = asyncio.create_task(self._watch(slot, process))
        try:
            await self._wait_healthy(slot, process, deadline)
            if process.returncode is not None or slot.process is not process:
                raise NotServable(
                    503, f"model {slot.name!r} exited with status {process.returncode} once ready"
                )
        except NotServable as e:
            await self.stop(slot.name, e.message)
            watcher.cancel()
            self._failed(slot, e.message)
            raise
        slot.state = "loaded"
        slot.loads += 1
        slot.reason = ""
        slot.last_error = None
        slot.last_used = self.clock()
        slot.load_seconds = self.clock() - started
        log.info("model %s loaded in %.1f s (pid %d)", slot.name, slot.load_seconds, process.pid)
        slot.ready.set_result(None)

    def _failed(self, slot: Slot, why: str) -> None:
        slot.state = "unloaded"
        slot.process = None
        slot.reason = why
        slot.last_error = why
        log.error("model %s failed to load: %s", slot.name, why)
        if slot.ready is not None and not slot.ready.done():
            slot.ready.set_exception(NotServable(503, f"model {slot.name!r}: {why}"))
            slot.ready.exception()  # retrieved here, so an unawaited future logs nothing
        slot.ready = None
        self._released.set()

    async def _wait_healthy(
        self, slot: Slot, process: asyncio.subprocess.Process, deadline: float
    ) -> None:
        url = f"http://127.0.0.1:{slot.model.port}/health"
        while True:
            if process.returncode is not None:
                raise NotServable(
                    503,
                    f"model {slot.name!r} exited with status {process.returncode} while loading "
                    "(its reason is in the journal just above)",
                )
            try:
                response = await self.client.get(url, timeout=2.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.clock() >= deadline:
                raise NotServable(503, f"model {slot.name!r} did not load within the wait")
            await asyncio.sleep(0.1)

    async def _watch(self, slot: Slot, process: asyncio.subprocess.Process) -> None:
        status = await process.wait()
        if slot.process is not process or slot.stopping:
            return
        slot.crashes += 1
        was = slot.state
        slot.state = "unloaded"
        slot.process = None
        slot.reason = slot.last_error = f"its llama-server exited with status {status}"
        if was == "loaded":
            log.error(
                "model %s: llama-server exited with status %d; the next request loads it again",
                slot.name,
                status,
            )
        self._released.set()

    async def stop(self, name: str, why: str) -> None:
        slot = self.slots[name]
        process = slot.process
        if process is None:
            return
        slot.stopping = True
        # Unloaded from here on: a request arriving while it exits waits for a new load
        # instead of being passed to a process that is going away.
        slot.state = "unloaded"
        log.info("stopping model %s: %s", name, why)
        if process.returncode is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(process.wait(), self.config.stop_timeout_s)
            except TimeoutError:
                log.warning(
                    "model %s did not stop within %.0f s: killed", name, self.config.stop_timeout_s
                )
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await process.wait()
        slot.state = "unloaded"
        slot.process = None
        slot.reason = why
        self._released.set()

    async def unload(self, name: str) -> None:
        """Stop a model now, as a load decision would (raises NotServable 409 while busy)."""
        async with self._decide:
            slot = self.slots[name]
            if slot.in_flight:
                raise NotServable(409, f"model {name!r} has {slot.in_flight} request(s) in flight")
            await self.stop(name, "unloaded on request (POST /models/unload)")

    # -- start-up and shut-down -------------------------------------------------------------

    async def preload(self) -> None:
        """Load the preload models (pinned ones first); raises NotServable when one fails."""
        order = sorted(
            (s for s in self.slots.values() if s.model.preload or s.model.pin),
            key=lambda s: not s.model.pin,
        )
        for slot in order:
            await self.acquire(slot.name)
            self.release(slot.name)

    async def shutdown(self) -> None:
        for name in list(self.slots):
            await self.stop(name, "nova-model-residency is stopping")

    def fits(self, name: str) -> bool:
        """Whether the model fits beside the pinned ones (else no eviction can make room)."""
        pinned = sum(
            s.footprint.bytes for s in self.slots.values() if s.model.pin and s.name != name
        )
        return self.slots[name].footprint.bytes <= self.budget.bytes - pinned

    def status(self) -> list[dict[str, object]]:
        now = self.clock()
        return [
            {
                "name": s.name,
                "state": s.state,
                "reason": s.reason or None,
                "last_error": s.last_error,
                "fits": self.fits(s.name),
                "quantization": s.model.quantization or None,
                "file_size": s.footprint.file_size,
                "context_length": s.footprint.context_length,
                "ctx_size": s.footprint.ctx_size,
                "ctx_per_request": s.footprint.ctx_size // max(1, s.footprint.parallel),
                "footprint_mib": s.footprint.bytes // MiB,
                "pinned": s.model.pin,
                "preload": s.model.preload,
                "in_flight": s.in_flight,
                "idle_s": round(now - s.last_used, 1) if s.state == "loaded" else None,
                "loads": s.loads,
                "evictions": s.evictions,
                "crashes": s.crashes,
                "last_load_s": s.load_seconds,
                "pid": s.process.pid if s.process is not None else None,
            }
            for s in self.slots.values()
        ]
