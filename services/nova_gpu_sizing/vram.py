"""GPU memory: NVML (nvidia-ml-py) first, then nvidia-smi; no GPU gives an empty list."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

MiB = 1024 * 1024
NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=name,memory.total,memory.used",
    "--format=csv,noheader,nounits",
]


@dataclass(frozen=True)
class GpuMemory:
    """One GPU's memory in bytes."""

    name: str
    total: int
    used: int

    @property
    def free(self) -> int:
        return max(0, self.total - self.used)


def _from_nvml() -> list[GpuMemory] | None:
    """GPUs from NVML, or None when NVML is unavailable (no package, no driver, no GPU)."""
    try:
        import pynvml  # optional: only where nvidia-ml-py is installed
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            if isinstance(name, bytes):
                name = name.decode()
            info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GpuMemory(name=str(name), total=int(info.total), used=int(info.used)))
        return gpus
    except pynvml.NVMLError:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def parse_nvidia_smi(output: str) -> list[GpuMemory]:
    """Parse ``name, total MiB, used MiB`` lines (``--format=csv,noheader,nounits``)."""
    gpus = []
    for line in output.splitlines():
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        name, total, used = parts
        try:
            gpus.append(GpuMemory(name=name, total=int(total) * MiB, used=int(used) * MiB))
        except ValueError:
            continue
    return gpus


def _from_nvidia_smi() -> list[GpuMemory] | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return parse_nvidia_smi(result.stdout)


def query_gpus(
    sources: tuple[Callable[[], list[GpuMemory] | None], ...] = (_from_nvml, _from_nvidia_smi),
) -> list[GpuMemory]:
    """The host's NVIDIA GPUs; empty when there are none (or no driver to see them)."""
    for source in sources:
        gpus = source()
        if gpus:
            return gpus
    return []
