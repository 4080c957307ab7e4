"""GPU memory: NVML (nvidia-ml-py, through :mod:`nova_common.nvml`) first, then nvidia-smi; no
GPU gives an empty list."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from nova_common.nvml import read_gpus

MiB = 1024 * 1024
NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=name,memory.total,memory.used",
    "--format=csv,noheader,nounits",
]


@dataclass(frozen=True)
class GpuMemory:
    """One GPU's memory in bytes: what sizing needs, from NVML's ``GpuDevice``, nvidia-smi or
    ``--gpu-mib``."""

    name: str
    total: int
    used: int

    @property
    def free(self) -> int:
        return max(0, self.total - self.used)


def _from_nvml() -> list[GpuMemory] | None:
    """GPUs from NVML, or None when NVML cannot say (no package, no driver, no GPU, a card
    whose memory it does not report): then nvidia-smi is asked."""
    reading = read_gpus()
    gpus = []
    for device in reading.devices:
        if device.memory_total_bytes is None or device.memory_used_bytes is None:
            return None
        gpus.append(GpuMemory(device.name, device.memory_total_bytes, device.memory_used_bytes))
    return gpus if reading.available else None


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
