"""GPU metrics through NVML (nvidia-ml-py). No GPU or driver is a state, not an error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pynvml

from .schemas import GpuDevice, GpuState

T = TypeVar("T")


def _optional(read: Callable[[], T]) -> T | None:
    """One metric; a GPU that does not support it gives None instead of failing the report."""
    try:
        return read()
    except pynvml.NVMLError:
        return None


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def gpu_state() -> GpuState:
    """Blocking (NVML calls); run it in a worker thread."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return GpuState(
            available=False,
            reason=f"no NVIDIA GPU driver found on this host (NVML: {exc})",
        )
    try:
        driver = _optional(lambda: _text(pynvml.nvmlSystemGetDriverVersion()))
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return GpuState(
                available=False,
                reason="NVIDIA driver loaded but no GPU found",
                driver_version=driver,
            )
        devices = []
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = _optional(lambda h=handle: pynvml.nvmlDeviceGetMemoryInfo(h))
            utilization = _optional(lambda h=handle: pynvml.nvmlDeviceGetUtilizationRates(h))
            power_mw = _optional(lambda h=handle: pynvml.nvmlDeviceGetPowerUsage(h))
            devices.append(
                GpuDevice(
                    index=index,
                    name=_optional(lambda h=handle: _text(pynvml.nvmlDeviceGetName(h))) or "?",
                    memory_used_bytes=int(memory.used) if memory is not None else None,
                    memory_total_bytes=int(memory.total) if memory is not None else None,
                    utilization_percent=(int(utilization.gpu) if utilization is not None else None),
                    temperature_c=_optional(
                        lambda h=handle: int(
                            pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
                        )
                    ),
                    power_w=round(power_mw / 1000.0, 1) if power_mw is not None else None,
                )
            )
        return GpuState(available=True, driver_version=driver, devices=devices)
    except pynvml.NVMLError as exc:
        return GpuState(available=False, reason=f"NVML error while reading the GPUs: {exc}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
