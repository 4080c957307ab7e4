"""The host's NVIDIA GPUs as NVML (nvidia-ml-py) reports them. No GPU is a state, not an error.

One reader and one device model for every caller: the status page, nova-diagnose and the
llama-server sizing step. Hosts without a GPU, without the driver or without nvidia-ml-py are
normal here (CPU hosts, CI), so :func:`read_gpus` never raises: it says ``available=False`` and
why. A metric one card does not support is ``None`` on that device instead of failing the read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


# A stdlib dataclass, so it serves as a pydantic field type (API responses, --json output), and
# without defaults, so a schema made from it lists every field as required (and nullable). Its
# docstring is the API's description of it.
@dataclass(frozen=True)
class GpuDevice:
    """One GPU as NVML reports it; null where the card does not report a metric."""

    index: int
    name: str
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    utilization_percent: int | None
    temperature_c: int | None
    power_w: float | None


@dataclass(frozen=True)
class GpuReading:
    """What NVML said: the devices when ``available``, otherwise ``reason`` says why not."""

    available: bool
    reason: str | None = None
    driver_version: str | None = None
    devices: tuple[GpuDevice, ...] = field(default_factory=tuple)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def read_gpus() -> GpuReading:
    """Every GPU NVML sees, with memory, utilization, temperature and power where supported.

    Blocking (NVML calls, a few ms): async callers run it in a worker thread.
    """
    try:
        import pynvml  # optional: only where nvidia-ml-py is installed
    except ImportError:
        return GpuReading(False, "NVML library (nvidia-ml-py) not installed: GPU state unknown")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return GpuReading(False, f"no NVIDIA driver (NVML: {exc})")

    def optional(read: Callable[[], T]) -> T | None:
        try:
            return read()
        except pynvml.NVMLError:
            return None

    try:
        driver = optional(lambda: _text(pynvml.nvmlSystemGetDriverVersion()))
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return GpuReading(False, "NVIDIA driver loaded but no GPU found", driver)
        devices = []
        for index in range(count):
            handle: Any = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = optional(lambda h=handle: pynvml.nvmlDeviceGetMemoryInfo(h))
            utilization = optional(lambda h=handle: pynvml.nvmlDeviceGetUtilizationRates(h))
            power_mw = optional(lambda h=handle: pynvml.nvmlDeviceGetPowerUsage(h))
            temperature = optional(
                lambda h=handle: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
            )
            devices.append(
                GpuDevice(
                    index=index,
                    name=optional(lambda h=handle: _text(pynvml.nvmlDeviceGetName(h))) or "?",
                    memory_used_bytes=int(memory.used) if memory is not None else None,
                    memory_total_bytes=int(memory.total) if memory is not None else None,
                    utilization_percent=int(utilization.gpu) if utilization is not None else None,
                    temperature_c=int(temperature) if temperature is not None else None,
                    power_w=round(power_mw / 1000.0, 1) if power_mw is not None else None,
                )
            )
        return GpuReading(True, None, driver, tuple(devices))
    except pynvml.NVMLError as exc:
        return GpuReading(False, f"NVML error while reading the GPUs: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
