"""nova-gpu-sizing: choose llama-server flags from the GPU's memory and the model's shape.

Stdlib only (the host venv needs no numpy): a minimal GGUF metadata reader (:mod:`.gguf`), VRAM
from NVML or nvidia-smi (:mod:`.vram`), the arithmetic (:mod:`.sizing`) and the unit's ExecStart,
which execs llama-server with the complete sized command line (``nova-gpu-sizing -- ...``).
"""

from .gguf import GGUFError, ModelInfo, read_model_info
from .sizing import SizingPlan, SizingRequest, plan_flags
from .vram import GpuMemory, query_gpus

__all__ = [
    "GGUFError",
    "GpuMemory",
    "ModelInfo",
    "SizingPlan",
    "SizingRequest",
    "plan_flags",
    "query_gpus",
    "read_model_info",
]
