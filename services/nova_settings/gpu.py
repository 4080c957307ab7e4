"""GPU metrics for the status page: :func:`nova_common.nvml.read_gpus` as the API's GpuState.
No GPU or driver is a state, not an error."""

from __future__ import annotations

from nova_common.nvml import read_gpus

from .schemas import GpuState


def gpu_state() -> GpuState:
    """Blocking (NVML calls); run it in a worker thread."""
    return GpuState.model_validate(read_gpus(), from_attributes=True)
