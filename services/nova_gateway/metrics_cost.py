"""What the gateway's own metrics cost, counted on its /metrics.

``nova_gateway_metrics_cpu_seconds_total{part}``: the time spent in LiteLLM's Prometheus
logger (``part="hooks"``: the hooks our callback hands events to, metrics.py, fast path
included) and in rendering scrapes (``part="scrapes"``). Divided by the requests served it
says what the metrics cost each request, measured where it is spent; ``scripts/bench-gateway
--metrics-cost`` prints it beside the side-by-side CPU ratio of a gateway with and without
metrics (what this count misses is their difference: the hand-over itself).

Both are timed with the thread's own CPU clock (``thread_time``): hooks around each
synchronous stretch of the coroutine (never across an ``await`` that suspends, so other
requests' work is not counted), scrapes in the worker thread they render in. A wall clock
(``perf_counter``, no syscall) counted 237-319 us per request on the test host for a success
event that costs 22 us of CPU there (the same logger and config, timed alone): under load the
event loop's thread waits for the GIL and the CPU inside a stretch. Two clock reads per
stretch cost a few us. Sums are flushed into the counter at most once a second.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Generator
from time import perf_counter, thread_time
from typing import Any

try:  # counted on the gateway's /metrics (LiteLLM's multiprocess registry) when available
    from prometheus_client import Counter

    CPU_SECONDS = Counter(
        "nova_gateway_metrics_cpu_seconds",
        "Time the gateway spent on its own Prometheus metrics, by part (hooks, scrapes).",
        ["part"],
    )
except ImportError:  # pragma: no cover - prometheus_client ships with LiteLLM's proxy extra
    CPU_SECONDS = None

# PrometheusLogger's own request hooks (the ones it overrides on CustomLogger).
METERED_HOOKS = (
    "async_log_success_event",
    "async_log_failure_event",
    "async_post_call_success_hook",
    "async_post_call_failure_hook",
    "log_success_fallback_event",
    "log_failure_fallback_event",
)
FLUSH_EVERY_S = 1.0

_lock = threading.Lock()
_pending: dict[str, float] = {"hooks": 0.0, "scrapes": 0.0}
_last_flush = perf_counter()


def spent(part: str, seconds: float) -> None:
    global _last_flush
    with _lock:
        _pending[part] += seconds
        now = perf_counter()
        if now - _last_flush < FLUSH_EVERY_S:
            return
        _last_flush = now
        due = {name: value for name, value in _pending.items() if value > 0}
        for name in due:
            _pending[name] = 0.0
    if CPU_SECONDS is not None:
        for name, value in due.items():
            CPU_SECONDS.labels(part=name).inc(value)


def flush() -> None:
    """Count what is pending now (tests; a worker about to go idle keeps < 1 s pending)."""
    global _last_flush
    _last_flush = perf_counter() - FLUSH_EVERY_S
    spent("hooks", 0.0)


class _Metered:
    """Awaits ``coro``, timing each stretch it runs between suspensions."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Any) -> None:
        self._coro = coro

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self._coro
        value: Any = None
        error: BaseException | None = None
        while True:
            start = thread_time()
            try:
                step = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as done:
                spent("hooks", thread_time() - start)
                return done.value
            except BaseException:
                spent("hooks", thread_time() - start)
                raise
            spent("hooks", thread_time() - start)
            try:
                value, error = (yield step), None
            except BaseException as thrown:  # cancellation reaches the hook as before
                value, error = None, thrown


def _timed(function: Callable[..., Any], part: str, clock: Callable[[], float]) -> Any:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent(part, clock() - start)

    timed.__nova_metered__ = True  # type: ignore[attr-defined]
    return timed


def _metered(method: Callable[..., Any]) -> Callable[..., Any]:
    if not inspect.iscoroutinefunction(method):
        return _timed(method, "hooks", thread_time)

    @functools.wraps(method)
    async def async_metered(*args: Any, **kwargs: Any) -> Any:
        return await _Metered(method(*args, **kwargs))

    async_metered.__nova_metered__ = True  # type: ignore[attr-defined]
    return async_metered


def install() -> None:
    """Idempotent. After metrics_tuning.install(), so its fast path is what gets timed."""
    try:
        from litellm.integrations import prometheus_metrics_endpoint
        from litellm.integrations.prometheus import PrometheusLogger
    except ImportError:  # no prometheus_client: the callback is off anyway
        return
    for name in METERED_HOOKS:
        method = PrometheusLogger.__dict__.get(name)
        if method is not None and not getattr(method, "__nova_metered__", False):
            setattr(PrometheusLogger, name, _metered(method))
    render = getattr(prometheus_metrics_endpoint, "render_scrape", None)
    if render is not None and not getattr(render, "__nova_metered__", False):
        # Scrapes render in a worker thread: its own CPU clock is exact there.
        prometheus_metrics_endpoint.render_scrape = _timed(render, "scrapes", thread_time)
