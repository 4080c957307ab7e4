"""How much memory a model takes once loaded, and how much the host has for models.

A model's footprint is its weights (the GGUF's size) plus the KV cache its command line asks
for (``--ctx-size`` tokens at f16, from the GGUF's layer and head counts) plus a fixed
allowance for compute buffers. Estimates, deliberately on the high side: the residency uses
them to decide what to evict before a load, nova-gpu-sizing then fits each child to the memory
really free when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nova_gpu_sizing.gguf import GGUFError, read_model_info
from nova_gpu_sizing.sizing import kv_bytes_per_token, requested_value
from nova_gpu_sizing.vram import MiB, query_gpus

from .config import ModelEntry, ResidencyConfig

COMPUTE_ALLOWANCE = 256 * MiB
DEFAULT_CTX = 4096


@dataclass(frozen=True)
class Footprint:
    bytes: int
    file_size: int
    context_length: int | None  # the model's trained context (GGUF metadata)
    ctx_size: int  # what its command line asks for (all slots together)
    detail: str
    parallel: int = 1  # its slots: each request gets ctx_size / parallel


def _requested_count(model: ModelEntry, default: int, *spellings: str) -> int:
    """A positive number the model's command line gives an option, else ``default``."""
    value = requested_value(model.command, *spellings)
    return int(value) if value and value.isdigit() and int(value) > 0 else default


def estimate(model: ModelEntry) -> Footprint:
    """The model's estimated footprint; raises OSError or GGUFError when the file cannot say."""
    info = read_model_info(model.path)
    ctx_size = _requested_count(model, DEFAULT_CTX, "--ctx-size", "-c")
    parallel = _requested_count(model, 1, "--parallel", "-np")
    kv = int(ctx_size * kv_bytes_per_token(info, "f16", "f16"))
    total = info.file_size + kv + COMPUTE_ALLOWANCE
    return Footprint(
        bytes=total,
        file_size=info.file_size,
        context_length=info.context_length or None,
        ctx_size=ctx_size,
        detail=(
            f"{total // MiB} MiB = weights {info.file_size // MiB} MiB + KV cache for "
            f"{ctx_size} tokens {kv // MiB} MiB + compute {COMPUTE_ALLOWANCE // MiB} MiB"
        ),
        parallel=parallel,
    )


def file_only(model: ModelEntry, why: str) -> Footprint:
    """When the GGUF cannot be read: its size alone (the load will say what is wrong)."""
    try:
        size = Path(model.path).stat().st_size
    except OSError:
        size = 0
    return Footprint(size + COMPUTE_ALLOWANCE, size, None, DEFAULT_CTX, f"estimate failed: {why}")


def footprint(model: ModelEntry) -> Footprint:
    try:
        return estimate(model)
    except (OSError, GGUFError) as e:
        return file_only(model, str(e))


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise OSError("/proc/meminfo has no MemAvailable")


@dataclass(frozen=True)
class Budget:
    bytes: int
    kind: str  # gpu | ram | cap
    detail: str


def measure_budget(config: ResidencyConfig) -> Budget:
    """The memory the models may take, measured before any child runs."""
    reserve = config.reserve_mib * MiB
    if config.budget_mib > 0:
        return Budget(config.budget_mib * MiB, "cap", f"{config.budget_mib} MiB (budget_mib)")
    gpus = query_gpus() if config.memory in ("auto", "gpu") else []
    if gpus:
        free = sum(g.free for g in gpus)
        return Budget(
            max(0, free - reserve),
            "gpu",
            f"{free // MiB} MiB free on {len(gpus)} GPU(s) less {config.reserve_mib} MiB reserve",
        )
    if config.memory == "gpu":
        return Budget(0, "gpu", "no GPU visible")
    available = _mem_available()
    return Budget(
        max(0, available - reserve),
        "ram",
        f"{available // MiB} MiB RAM available less {config.reserve_mib} MiB reserve",
    )
