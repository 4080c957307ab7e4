"""nova_common.nvml: one reader; no GPU, driver or library is a clean "unavailable", not a crash."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from nova_common.nvml import GpuDevice, GpuReading, read_gpus


class NVMLError(Exception):
    pass


def fake_pynvml(
    count: int = 2, unsupported: tuple[str, ...] = (), init: Callable[[], None] | None = None
) -> types.ModuleType:
    """A pynvml stand-in: GPU i has (i+1) GiB total, half used; ``unsupported`` calls fail."""
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError  # type: ignore[attr-defined]
    m.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    m.shutdowns = 0  # type: ignore[attr-defined]

    def call(name: str, value: Callable[..., Any]) -> Callable[..., Any]:
        def f(*args: Any) -> Any:
            if name in unsupported:
                raise NVMLError(f"{name}: Not Supported")
            return value(*args)

        return f

    def shutdown() -> None:
        m.shutdowns += 1  # type: ignore[attr-defined]

    gib = 1 << 30
    m.nvmlInit = init or (lambda: None)  # type: ignore[attr-defined]
    m.nvmlShutdown = shutdown  # type: ignore[attr-defined]
    m.nvmlSystemGetDriverVersion = call("driver", lambda: b"550.54")  # type: ignore[attr-defined]
    m.nvmlDeviceGetCount = call("count", lambda: count)  # type: ignore[attr-defined]
    m.nvmlDeviceGetHandleByIndex = call("handle", lambda i: i)  # type: ignore[attr-defined]
    m.nvmlDeviceGetName = call("name", lambda h: f"GPU {h}".encode())  # type: ignore[attr-defined]
    m.nvmlDeviceGetMemoryInfo = call(  # type: ignore[attr-defined]
        "memory", lambda h: types.SimpleNamespace(total=(h + 1) * gib, used=(h + 1) * gib // 2)
    )
    m.nvmlDeviceGetUtilizationRates = call(  # type: ignore[attr-defined]
        "utilization", lambda h: types.SimpleNamespace(gpu=40 + h)
    )
    m.nvmlDeviceGetPowerUsage = call("power", lambda h: 123456)  # type: ignore[attr-defined]
    m.nvmlDeviceGetTemperature = call("temperature", lambda h, s: 61)  # type: ignore[attr-defined]
    return m


def use(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", module)


def test_on_this_machine_it_answers_without_raising():
    reading = read_gpus()
    assert isinstance(reading, GpuReading)
    assert reading.available == bool(reading.devices)
    assert reading.available or reading.reason


def test_without_nvidia_ml_py(monkeypatch):
    use(monkeypatch, None)  # import pynvml raises ImportError
    assert read_gpus() == GpuReading(
        False, "NVML library (nvidia-ml-py) not installed: GPU state unknown"
    )


def test_without_a_driver(monkeypatch):
    def no_driver() -> None:
        raise NVMLError("Driver Not Loaded")

    use(monkeypatch, fake_pynvml(init=no_driver))
    reading = read_gpus()
    assert not reading.available and reading.devices == ()
    assert reading.reason == "no NVIDIA driver (NVML: Driver Not Loaded)"


def test_driver_without_a_gpu(monkeypatch):
    nvml = fake_pynvml(count=0)
    use(monkeypatch, nvml)
    assert read_gpus() == GpuReading(False, "NVIDIA driver loaded but no GPU found", "550.54")
    assert nvml.shutdowns == 1


def test_devices_and_their_metrics(monkeypatch):
    use(monkeypatch, fake_pynvml())
    reading = read_gpus()
    assert reading.available and reading.driver_version == "550.54"
    assert reading.devices[1] == GpuDevice(
        index=1,
        name="GPU 1",
        memory_used_bytes=1 << 30,
        memory_total_bytes=2 << 30,
        utilization_percent=41,
        temperature_c=61,
        power_w=123.5,
    )


def test_an_unsupported_metric_is_none_not_a_failure(monkeypatch):
    use(monkeypatch, fake_pynvml(unsupported=("power", "temperature", "utilization", "name")))
    device = read_gpus().devices[0]
    assert device.name == "?" and device.memory_total_bytes == 1 << 30
    assert device.power_w is device.temperature_c is device.utilization_percent is None


def test_an_nvml_error_while_listing_is_a_reason(monkeypatch):
    nvml = fake_pynvml(unsupported=("handle",))
    use(monkeypatch, nvml)
    reading = read_gpus()
    assert not reading.available
    assert reading.reason == "NVML error while reading the GPUs: handle: Not Supported"
    assert nvml.shutdowns == 1


def test_the_device_model_serves_pydantic_models():
    class Report(pydantic.BaseModel):
        devices: list[GpuDevice]

    device = GpuDevice(0, "H200", 1 << 30, 141 << 30, 3, 40, 80.5)
    report = Report(devices=[device])
    assert report.model_dump()["devices"][0]["memory_total_bytes"] == 141 << 30
    schema = Report.model_json_schema(mode="serialization")["$defs"]["GpuDevice"]
    assert len(schema["required"]) == 7  # a client can rely on every field being there
