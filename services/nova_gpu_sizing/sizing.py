"""The arithmetic: llama-server flags that fit the model and its KV cache into the GPU's memory.

- weights: about the GGUF file's size; all layers on the GPU (``--n-gpu-layers 999``) when they
  fit, else a proportional share of layers (each layer carries 1/(n_layers+1) of the file plus
  its share of the KV cache; the +1 stands for the embeddings and output layer);
- KV cache bytes per token = 2 (K and V) x layers x KV heads x head dim x bytes per element
  (f16 = 2, q8_0 = 34/32, q4_0 = 18/32: ggml blocks of 32 with an f16 scale);
- headroom: CUDA context and compute buffers, a fixed amount per GPU plus a fraction of it;
- context: ``ctx_per_slot`` (capped at the model's trained context) x ``parallel`` slots. When
  the f16 cache does not fit, q8_0 (needs flash attention); then fewer slots (each keeps the
  requested context); then a shorter context per slot.

Every choice can be overridden; an override is an input to the search, so the remaining choices
are made around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from .gguf import ModelInfo
from .vram import GpuMemory

MiB: Final = 1024 * 1024
GiB: Final = 1024 * MiB
ALL_LAYERS: Final = 999

# Bytes per KV cache element of each cache type (ggml block size 32 with an f16 scale).
KV_BYTES_PER_ELEMENT: Final[dict[str, float]] = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "iq4_nl": 18 / 32,
}
QUANTIZED_V_NEEDS_FA: Final = frozenset(KV_BYTES_PER_ELEMENT) - {"f32", "f16", "bf16"}

# Flag name -> llama-server command-line option.
FLAG_OPTIONS: Final[dict[str, str]] = {
    "n_gpu_layers": "--n-gpu-layers",
    "ctx_size": "--ctx-size",
    "parallel": "--parallel",
    "flash_attn": "--flash-attn",
    "cache_type_k": "--cache-type-k",
    "cache_type_v": "--cache-type-v",
    "batch_size": "--batch-size",
    "ubatch_size": "--ubatch-size",
}
# Every spelling llama-server accepts for those options (each takes one value): a request that
# names one in any spelling has it replaced, so no option reaches llama-server twice.
OPTION_SPELLINGS: Final[dict[str, tuple[str, ...]]] = {
    "n_gpu_layers": ("--n-gpu-layers", "--gpu-layers", "-ngl"),
    "ctx_size": ("--ctx-size", "-c"),
    "parallel": ("--parallel", "-np"),
    "flash_attn": ("--flash-attn", "-fa"),
    "cache_type_k": ("--cache-type-k", "-ctk"),
    "cache_type_v": ("--cache-type-v", "-ctv"),
    "batch_size": ("--batch-size", "-b"),
    "ubatch_size": ("--ubatch-size", "-ub"),
}
# Override keys: the flags, plus inputs of the search.
OVERRIDE_KEYS: Final = frozenset(FLAG_OPTIONS) | {"cache_type", "ctx_per_slot"}
_INT_KEYS: Final = frozenset(
    {"n_gpu_layers", "ctx_size", "parallel", "batch_size", "ubatch_size", "ctx_per_slot"}
)
_FA_VALUES: Final = frozenset({"on", "off", "auto"})


@dataclass(frozen=True)
class SizingRequest:
    """What the operator asks for; the sizing fits it to the memory."""

    ctx_per_slot: int = 8192
    parallel: int = 4
    # Never shrink a slot's context below this (unless the model's trained context is shorter).
    min_ctx_per_slot: int = 2048
    # Headroom per GPU: CUDA context and compute buffers, plus a fraction of the card.
    headroom_fixed: int = 768 * MiB
    headroom_fraction: float = 0.05
    # Cache types tried in order when the previous one does not fit (q4_0 costs quality).
    kv_cache_types: tuple[str, ...] = ("f16", "q8_0")
    overrides: dict[str, int | str] = field(default_factory=dict)


@dataclass
class SizingPlan:
    """The chosen flags (name -> value, see FLAG_OPTIONS) and why."""

    flags: dict[str, int | str]
    reasons: list[str]
    on_gpu: bool

    def args(self) -> list[str]:
        """The llama-server command-line options for the flags."""
        out: list[str] = []
        for name, value in self.flags.items():
            out += [FLAG_OPTIONS[name], str(value)]
        return out


def requested_value(request: Sequence[str], *spellings: str) -> str | None:
    """The value the request gives an option (its last occurrence, ``--opt v`` or ``--opt=v``)."""
    found = None
    for i, arg in enumerate(request):
        name, eq, value = arg.partition("=")
        if name in spellings:
            if eq:
                found = value
            elif i + 1 < len(request):
                found = request[i + 1]
    return found


def complete_args(request: Sequence[str], plan: SizingPlan) -> list[str]:
    """llama-server's whole command line (without the program): the requested flags, less every
    option the plan decides (in any spelling), then the plan's flags. Each option once."""
    decided = {spelling for name in plan.flags for spelling in OPTION_SPELLINGS[name]}
    out: list[str] = []
    skip_value = False
    for arg in request:
        if skip_value:
            skip_value = False
            continue
        name, eq, _ = arg.partition("=")
        if name in decided:
            skip_value = not eq
            continue
        out.append(arg)
    return out + plan.args()


def replaced_flags(request: Sequence[str], plan: SizingPlan) -> list[str]:
    """'--opt old -> new' for each requested option whose value the plan changes (for the log)."""
    out = []
    for name, value in plan.flags.items():
        old = requested_value(request, *OPTION_SPELLINGS[name])
        if old is not None and old != str(value):
            out.append(f"{FLAG_OPTIONS[name]} {old} -> {value}")
    return out


def parse_overrides(items: list[str] | dict[str, str | int]) -> dict[str, int | str]:
    """Validate overrides given as ``key=value`` strings or a dict; values typed per key."""
    pairs = items.items() if isinstance(items, dict) else [_split(item) for item in items]
    out: dict[str, int | str] = {}
    for key, raw in pairs:
        key = key.strip().replace("-", "_")
        if key not in OVERRIDE_KEYS:
            raise ValueError(f"unknown override {key!r}; known: {', '.join(sorted(OVERRIDE_KEYS))}")
        value = str(raw).strip()
        if key in _INT_KEYS:
            try:
                out[key] = int(value)
            except ValueError as e:
                raise ValueError(f"override {key} needs an integer, not {value!r}") from e
            if out[key] < (0 if key == "n_gpu_layers" else 1):
                raise ValueError(f"override {key}={value} is out of range")
        elif key == "flash_attn":
            value = {"1": "on", "true": "on", "0": "off", "false": "off"}.get(value.lower(), value)
            if value not in _FA_VALUES:
                raise ValueError(f"override flash_attn must be on, off or auto, not {value!r}")
            out[key] = value
        else:
            if value not in KV_BYTES_PER_ELEMENT:
                known = ", ".join(KV_BYTES_PER_ELEMENT)
                raise ValueError(f"override {key}: unknown cache type {value!r} ({known})")
            out[key] = value
    return out


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise ValueError(f"override {item!r} is not key=value")
    return key, value


def kv_bytes_per_token(model: ModelInfo, cache_type_k: str, cache_type_v: str) -> float:
    """Bytes of K and V cache per token over all layers."""
    heads = model.kv_heads_total
    return heads * (
        model.key_length * KV_BYTES_PER_ELEMENT[cache_type_k]
        + model.value_length * KV_BYTES_PER_ELEMENT[cache_type_v]
    )


def _gib(n: float) -> str:
    return f"{n / GiB:.2f} GiB"


class _Planner:
    def __init__(self, model: ModelInfo, gpus: list[GpuMemory], request: SizingRequest) -> None:
        self.model = model
        self.gpus = gpus
        self.request = request
        self.ov = request.overrides
        self.reasons: list[str] = []

    def note(self, text: str) -> None:
        self.reasons.append(text)

    # -- inputs -------------------------------------------------------------------------------

    def ctx_per_slot(self) -> int:
        wanted = int(self.ov.get("ctx_per_slot", self.request.ctx_per_slot))
        trained = self.model.context_length
        if trained and wanted > trained:
            self.note(f"context per slot capped at the model's trained context {trained}")
            return trained
        return wanted

    def cache_types(self, flash_attn: str) -> list[tuple[str, str]]:
        """(K, V) cache types to try in order."""
        k_ov, v_ov = self.ov.get("cache_type_k"), self.ov.get("cache_type_v")
        both = self.ov.get("cache_type")
        if k_ov or v_ov or both:
            k = str(k_ov or both or "f16")
            v = str(v_ov or both or "f16")
            if v in QUANTIZED_V_NEEDS_FA and flash_attn == "off":
                self.note(f"warning: a {v} V cache needs flash attention, which is overridden off")
            return [(k, v)]
        if flash_attn == "off":
            self.note("flash attention off: the V cache stays f16 (quantized V needs it)")
            return [("f16", "f16")]
        return [(t, t) for t in self.request.kv_cache_types]

    # -- plans --------------------------------------------------------------------------------

    def finish(self, flags: dict[str, int | str], on_gpu: bool) -> SizingPlan:
        for key in ("batch_size", "ubatch_size"):
            if key in self.ov:
                flags[key] = self.ov[key]
                self.note(f"{key} {self.ov[key]} (override)")
        return SizingPlan(flags=flags, reasons=self.reasons, on_gpu=on_gpu)

    def cpu(self, why: str) -> SizingPlan:
        self.note(why)
        per_slot = self.ctx_per_slot()
        parallel = int(self.ov.get("parallel", self.request.parallel))
        ctx = int(self.ov.get("ctx_size", per_slot * parallel))
        fa = str(self.ov.get("flash_attn", "auto"))
        k, v = self.cache_types(fa)[0]
        self.note(f"CPU: {parallel} slots, context {ctx} in total, KV cache {k}/{v} in RAM")
        flags: dict[str, int | str] = {
            "n_gpu_layers": 0,
            "ctx_size": ctx,
            "parallel": parallel,
            "flash_attn": fa,
            "cache_type_k": k,
            "cache_type_v": v,
        }
        return self.finish(flags, on_gpu=False)

    def plan(self) -> SizingPlan:
        model, req = self.model, self.request
        if self.ov.get("n_gpu_layers") == 0:
            return self.cpu("n_gpu_layers 0 (override): CPU only")
        if not self.gpus:
            return self.cpu("no NVIDIA GPU found (NVML, nvidia-smi): CPU only")
        total = sum(g.total for g in self.gpus)
        free = sum(g.free for g in self.gpus)
        headroom = sum(req.headroom_fixed + req.headroom_fraction * g.total for g in self.gpus)
        budget = free - headroom
        names = ", ".join(f"{g.name} ({_gib(g.total)}, {_gib(g.used)} used)" for g in self.gpus)
        self.note(
            f"GPU: {names}; free {_gib(free)} of {_gib(total)}, minus headroom {_gib(headroom)}"
            f" (compute buffers, CUDA context) leaves {_gib(budget)}"
        )
        weights = model.file_size
        fa = str(self.ov.get("flash_attn", "on"))
        self.note(
            f"flash attention {fa}" + (" (override)" if "flash_attn" in self.ov else " (GPU)")
        )
        types = self.cache_types(fa)
        per_slot = self.ctx_per_slot()
        parallel_req = int(self.ov.get("parallel", req.parallel))

        ngl_ov = self.ov.get("n_gpu_layers")
        min_ctx = int(self.ov.get("ctx_size", min(per_slot, req.min_ctx_per_slot)))
        cheapest = min(types, key=lambda kv: kv_bytes_per_token(model, *kv))
        full_fits = weights + min_ctx * kv_bytes_per_token(model, *cheapest) <= budget
        if ngl_ov is None and not full_fits:
            return self.partial(budget, weights, fa, types[0], per_slot, parallel_req)
        if ngl_ov is not None and int(ngl_ov) < model.block_count:
            self.note(f"n_gpu_layers {ngl_ov} of {model.block_count} (override)")
            return self.context_for_layers(int(ngl_ov), fa, types[0], per_slot, parallel_req)

        ngl = int(ngl_ov) if ngl_ov is not None else ALL_LAYERS
        self.note(
            f"weights {_gib(weights)} fit: all {model.block_count} layers on the GPU"
            f" (--n-gpu-layers {ngl}{', override' if ngl_ov is not None else ''})"
        )
        kv_budget = budget - weights
        ctx, parallel, (k, v) = self.fit_context(kv_budget, types, per_slot, parallel_req)
        flags: dict[str, int | str] = {
            "n_gpu_layers": ngl,
            "ctx_size": ctx,
            "parallel": parallel,
            "flash_attn": fa,
            "cache_type_k": k,
            "cache_type_v": v,
        }
        return self.finish(flags, on_gpu=True)

    def fit_context(
        self, kv_budget: float, types: list[tuple[str, str]], per_slot: int, parallel_req: int
    ) -> tuple[int, int, tuple[str, str]]:
        """Total context, slots and cache types whose KV cache fits in kv_budget bytes."""
        model, req = self.model, self.request

        def describe(ctx: int, kv: tuple[str, str]) -> str:
            per_token = kv_bytes_per_token(model, *kv)
            return (
                f"KV cache {kv[0]}/{kv[1]}: {per_token / 1024:.0f} KiB/token x {ctx}"
                f" = {_gib(per_token * ctx)} of {_gib(kv_budget)} left"
            )

        if "ctx_size" in self.ov:
            ctx = int(self.ov["ctx_size"])
            for kv in types:
                if ctx * kv_bytes_per_token(model, *kv) <= kv_budget:
                    self.note(f"context {ctx} (override); {describe(ctx, kv)}")
                    return ctx, parallel_req, kv
            kv = types[-1]
            self.note(f"warning: context {ctx} (override) does not fit; {describe(ctx, kv)}")
            return ctx, parallel_req, kv

        slot_options = [parallel_req] if "parallel" in self.ov else range(parallel_req, 0, -1)
        for parallel in slot_options:
            ctx = per_slot * parallel
            for kv in types:
                if ctx * kv_bytes_per_token(model, *kv) <= kv_budget:
                    if parallel < parallel_req:
                        self.note(
                            f"{parallel_req} slots of {per_slot} do not fit: {parallel} slots"
                        )
                    self.note(f"{parallel} slots x {per_slot} tokens; {describe(ctx, kv)}")
                    return ctx, parallel, kv
                if kv != types[-1]:
                    self.note(f"{describe(ctx, kv)}: too big, trying a smaller cache type")
        parallel = parallel_req if "parallel" in self.ov else 1
        kv = types[-1]
        per_token = kv_bytes_per_token(model, *kv)
        slot_ctx = int(kv_budget / per_token / parallel) // 256 * 256
        floor = min(req.min_ctx_per_slot, per_slot)
        if slot_ctx < floor:
            self.note(f"warning: even {floor} tokens per slot do not fit; using {floor}")
            slot_ctx = floor
        ctx = slot_ctx * parallel
        self.note(
            f"{per_slot} tokens per slot do not fit: {parallel} slots x {slot_ctx}; "
            f"{describe(ctx, kv)}"
        )
        return ctx, parallel, kv

    def partial(
        self,
        budget: float,
        weights: int,
        fa: str,
        kv: tuple[str, str],
        per_slot: int,
        parallel: int,
    ) -> SizingPlan:
        model = self.model
        ctx = int(self.ov.get("ctx_size", per_slot * parallel))
        per_layer = weights / (model.block_count + 1) + ctx * kv_bytes_per_token(model, *kv) / max(
            1, model.block_count
        )
        layers = min(model.block_count, max(0, int(budget // per_layer)))
        self.note(
            f"weights {_gib(weights)} do not fit in {_gib(budget)} with a KV cache: each layer"
            f" needs {_gib(per_layer)} (weights and KV for {ctx} tokens), so {layers} of"
            f" {model.block_count} layers on the GPU"
        )
        if layers == 0:
            return self.cpu("not one layer fits on the GPU: CPU only")
        return self.context_for_layers(layers, fa, kv, per_slot, parallel)

    def context_for_layers(
        self, layers: int, fa: str, kv: tuple[str, str], per_slot: int, parallel: int
    ) -> SizingPlan:
        ctx = int(self.ov.get("ctx_size", per_slot * parallel))
        self.note(
            f"partial offload: {parallel} slots, context {ctx}, KV cache {kv[0]}/{kv[1]}"
            " (the CPU layers' share in RAM)"
        )
        flags: dict[str, int | str] = {
            "n_gpu_layers": layers,
            "ctx_size": ctx,
            "parallel": parallel,
            "flash_attn": fa,
            "cache_type_k": kv[0],
            "cache_type_v": kv[1],
        }
        return self.finish(flags, on_gpu=True)


def plan_flags(
    model: ModelInfo, gpus: list[GpuMemory], request: SizingRequest | None = None
) -> SizingPlan:
    """Choose llama-server flags for model on gpus (empty: CPU only)."""
    return _Planner(model, gpus, request or SizingRequest()).plan()
