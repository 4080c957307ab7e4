"""The sizing arithmetic against known cards and model shapes (no GPU, no model files)."""

from __future__ import annotations

import pytest

from nova_gpu_sizing import GpuMemory, ModelInfo, SizingRequest, plan_flags
from nova_gpu_sizing.sizing import (
    KV_BYTES_PER_ELEMENT,
    OPTION_SPELLINGS,
    complete_args,
    kv_bytes_per_token,
    parse_overrides,
    requested_value,
)
from nova_gpu_sizing.vram import parse_nvidia_smi, query_gpus

MiB = 1024 * 1024
GB = 10**9


def qwen3_8b(file_size: int) -> ModelInfo:
    """Qwen3-8B's shape: 36 layers, 32 query / 8 KV heads of 128, trained context 40960."""
    return ModelInfo(
        path="qwen3-8b.gguf",
        file_size=file_size,
        version=3,
        tensor_count=399,
        architecture="qwen3",
        block_count=36,
        context_length=40960,
        embedding_length=4096,
        head_count=32,
        head_count_kv=8,
        key_length=128,
        value_length=128,
    )


Q8_0 = qwen3_8b(int(8.7 * GB))  # Qwen3-8B-Q8_0.gguf
UD_Q8_K_XL = qwen3_8b(int(10.8 * GB))  # DeepSeek-R1-0528-Qwen3-8B-UD-Q8_K_XL.gguf
# Totals as nvidia-smi reports them (MiB), with a little in use by the driver.
CARD_16GB = GpuMemory("NVIDIA RTX A4000", 16376 * MiB, 200 * MiB)
CARD_24GB = GpuMemory("NVIDIA GeForce RTX 4090", 24564 * MiB, 200 * MiB)
CARD_80GB = GpuMemory("NVIDIA H100 80GB HBM3", 81559 * MiB, 0)
CARD_8GB = GpuMemory("NVIDIA GeForce RTX 4060", 8188 * MiB, 200 * MiB)


def request(**kw: object) -> SizingRequest:
    overrides = parse_overrides(kw.pop("overrides", {}))  # type: ignore[arg-type]
    return SizingRequest(overrides=overrides, **kw)  # type: ignore[arg-type]


def test_kv_bytes_per_token_of_qwen3_8b() -> None:
    # 2 (K and V) x 36 layers x 8 KV heads x 128 x 2 bytes = 144 KiB per token.
    assert kv_bytes_per_token(Q8_0, "f16", "f16") == 2 * 36 * 8 * 128 * 2 == 147456
    assert kv_bytes_per_token(Q8_0, "q8_0", "q8_0") == pytest.approx(147456 * 1.0625 / 2)
    assert KV_BYTES_PER_ELEMENT["q4_0"] == pytest.approx(0.5625)


def test_16gb_card_q8_0_model_fits_with_f16_cache() -> None:
    plan = plan_flags(Q8_0, [CARD_16GB])
    assert plan.on_gpu
    assert plan.flags == {
        "n_gpu_layers": 999,
        "ctx_size": 4 * 8192,
        "parallel": 4,
        "flash_attn": "on",
        "cache_type_k": "f16",
        "cache_type_v": "f16",
    }
    assert any("fit: all 36 layers on the GPU" in r for r in plan.reasons)


def test_16gb_card_ud_q8_k_xl_needs_q8_0_cache() -> None:
    # 10.8 GB of weights leave ~4.5 GB: 32768 tokens of f16 KV (4.8 GB) do not fit, q8_0 does.
    plan = plan_flags(UD_Q8_K_XL, [CARD_16GB])
    assert plan.flags["n_gpu_layers"] == 999
    assert plan.flags["ctx_size"] == 32768
    assert plan.flags["parallel"] == 4
    assert plan.flags["cache_type_k"] == plan.flags["cache_type_v"] == "q8_0"
    assert plan.flags["flash_attn"] == "on"
    assert any("too big, trying a smaller cache type" in r for r in plan.reasons)


def test_16gb_card_long_context_drops_slots_before_shortening_them() -> None:
    plan = plan_flags(UD_Q8_K_XL, [CARD_16GB], request(ctx_per_slot=16384, parallel=4))
    # 4 x 16384 in q8_0 is 5.1 GB, more than is left; 3 slots keep 16384 tokens each.
    assert plan.flags["parallel"] == 3
    assert plan.flags["ctx_size"] == 3 * 16384
    assert plan.flags["cache_type_k"] == "q8_0"


def test_24gb_card() -> None:
    plan = plan_flags(UD_Q8_K_XL, [CARD_24GB])
    assert plan.flags["cache_type_k"] == "f16"
    assert plan.flags["ctx_size"] == 32768
    long = plan_flags(UD_Q8_K_XL, [CARD_24GB], request(ctx_per_slot=32768, parallel=4))
    # 131072 tokens: f16 19.3 GB no, q8_0 10.3 GB yes.
    assert long.flags["ctx_size"] == 131072
    assert long.flags["parallel"] == 4
    assert long.flags["cache_type_k"] == "q8_0"


def test_80gb_card_caps_at_the_trained_context() -> None:
    plan = plan_flags(UD_Q8_K_XL, [CARD_80GB], request(ctx_per_slot=65536, parallel=8))
    assert plan.flags["ctx_size"] == 8 * 40960
    assert plan.flags["parallel"] == 8
    assert plan.flags["cache_type_k"] == "f16"
    assert any("trained context 40960" in r for r in plan.reasons)


def test_two_cards_add_up() -> None:
    plan = plan_flags(UD_Q8_K_XL, [CARD_8GB, CARD_8GB])
    assert plan.flags["n_gpu_layers"] == 999


def test_small_card_offloads_part_of_the_layers() -> None:
    plan = plan_flags(UD_Q8_K_XL, [CARD_8GB])
    assert plan.on_gpu
    # Budget ~7.1 GB; a layer is ~0.29 GB of weights + ~0.13 GB of KV for 32768 tokens.
    assert 14 <= plan.flags["n_gpu_layers"] <= 18
    assert plan.flags["ctx_size"] == 32768
    assert any("layers on the GPU" in r for r in plan.reasons)


def test_cpu_only_host() -> None:
    plan = plan_flags(Q8_0, [])
    assert not plan.on_gpu
    assert plan.flags["n_gpu_layers"] == 0
    assert plan.flags["flash_attn"] == "auto"
    assert plan.flags["ctx_size"] == 32768
    assert plan.reasons[0].startswith("no NVIDIA GPU")


def test_card_too_small_for_a_layer_is_cpu() -> None:
    tiny = GpuMemory("tiny", 1024 * MiB, 0)
    plan = plan_flags(UD_Q8_K_XL, [tiny])
    assert not plan.on_gpu
    assert plan.flags["n_gpu_layers"] == 0


def test_overrides_win() -> None:
    plan = plan_flags(
        UD_Q8_K_XL,
        [CARD_80GB],
        request(overrides={"n_gpu_layers": "20", "batch_size": "2048", "ubatch_size": "512"}),
    )
    assert plan.flags["n_gpu_layers"] == 20
    assert plan.flags["batch_size"] == 2048
    assert plan.flags["ubatch_size"] == 512
    assert plan.args()[-4:] == ["--batch-size", "2048", "--ubatch-size", "512"]


def test_cache_type_override_constrains_the_search() -> None:
    # f16 forced: instead of q8_0 with 4 slots, 3 slots of 8192 f16 fit.
    plan = plan_flags(UD_Q8_K_XL, [CARD_16GB], request(overrides={"cache_type": "f16"}))
    assert plan.flags["cache_type_k"] == plan.flags["cache_type_v"] == "f16"
    assert plan.flags["parallel"] == 3
    assert plan.flags["ctx_size"] == 3 * 8192


def test_parallel_override_shortens_slots_instead() -> None:
    plan = plan_flags(
        UD_Q8_K_XL, [CARD_16GB], request(ctx_per_slot=16384, overrides={"parallel": "4"})
    )
    assert plan.flags["parallel"] == 4
    assert plan.flags["ctx_size"] < 4 * 16384
    assert plan.flags["ctx_size"] % (4 * 256) == 0
    assert plan.flags["cache_type_k"] == "q8_0"


def test_flash_attention_off_keeps_f16() -> None:
    plan = plan_flags(UD_Q8_K_XL, [CARD_16GB], request(overrides={"flash_attn": "off"}))
    assert plan.flags["flash_attn"] == "off"
    assert plan.flags["cache_type_v"] == "f16"


def test_ctx_size_and_gpu_layer_overrides() -> None:
    plan = plan_flags(Q8_0, [CARD_16GB], request(overrides={"ctx_size": "60000"}))
    # 60000 tokens: f16 8.8 GB does not fit beside the weights, q8_0 4.7 GB does.
    assert plan.flags["ctx_size"] == 60000
    assert plan.flags["n_gpu_layers"] == 999
    assert plan.flags["cache_type_k"] == "q8_0"
    huge = plan_flags(Q8_0, [CARD_16GB], request(overrides={"ctx_size": "200000"}))
    # The KV cache of 200000 tokens does not fit beside the weights: layers are shared out.
    assert huge.flags["ctx_size"] == 200000
    assert 0 < huge.flags["n_gpu_layers"] < 36
    cpu = plan_flags(Q8_0, [CARD_80GB], request(overrides={"n_gpu_layers": "0"}))
    assert cpu.flags["n_gpu_layers"] == 0
    assert not cpu.on_gpu


# The llama_server role's request, with an operator's extra flags that repeat sized options in
# other spellings (short, --opt=value).
REQUEST = [
    "--host", "127.0.0.1", "--port", "8080", "--model", "/var/lib/nova/models/active.gguf",
    "--alias", "m", "--ctx-size", "4096", "--parallel", "2", "--n-gpu-layers", "0",
    "--flash-attn", "auto", "--jinja", "--metrics", "-c", "8192", "-ngl=12", "-ctk", "q4_0",
    "--batch-size", "1024", "--log-verbosity", "4",
]  # fmt: skip


def options(argv: list[str]) -> list[str]:
    """The options of a command line, each spelling mapped to the sizing's long name."""
    canonical = {s: spellings[0] for spellings in OPTION_SPELLINGS.values() for s in spellings}
    names = [arg.partition("=")[0] for arg in argv if arg.startswith("-") and arg[1:2].isalpha()]
    return [canonical.get(name, name) for name in names]


@pytest.mark.parametrize(
    ("gpus", "overrides"),
    [
        ([CARD_16GB], {}),
        ([CARD_8GB], {}),
        ([], {}),
        ([CARD_80GB], {"batch_size": "2048", "ubatch_size": "512", "cache_type": "q8_0"}),
    ],
)
def test_no_flag_is_emitted_twice(gpus: list[GpuMemory], overrides: dict) -> None:
    plan = plan_flags(UD_Q8_K_XL, gpus, request(overrides=overrides))
    argv = complete_args(REQUEST, plan)
    names = options(argv)
    assert len(names) == len(set(names)), argv
    # Every sized flag is the plan's; everything else is the request's, in its order.
    for name, value in plan.flags.items():
        assert requested_value(argv, *OPTION_SPELLINGS[name]) == str(value)
    assert argv[:8] == REQUEST[:8]
    assert "--log-verbosity" in argv and "--jinja" in argv
    assert requested_value(argv, "--batch-size", "-b") == str(overrides.get("batch_size", 1024))


def test_requested_values() -> None:
    assert requested_value(REQUEST, "--ctx-size", "-c") == "8192"  # the last one
    assert requested_value(REQUEST, "--n-gpu-layers", "-ngl") == "12"
    assert requested_value(REQUEST, "--model", "-m") == "/var/lib/nova/models/active.gguf"
    assert requested_value(REQUEST, "--threads") is None


@pytest.mark.parametrize(
    "bad",
    [["nope=1"], ["parallel=x"], ["parallel=0"], ["cache_type=q3"], ["flash_attn=maybe"], ["x"]],
)
def test_bad_overrides_are_rejected(bad: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_overrides(bad)


def test_nvidia_smi_parsing_and_source_order() -> None:
    gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559, 1\nNVIDIA L4, 23034, 0\ngarbage\n")
    assert gpus == [
        GpuMemory("NVIDIA H100 80GB HBM3", 81559 * MiB, 1 * MiB),
        GpuMemory("NVIDIA L4", 23034 * MiB, 0),
    ]
    assert query_gpus((lambda: None, lambda: gpus)) == gpus
    assert query_gpus((lambda: None, lambda: [])) == []


def test_no_gpu_on_this_machine_means_cpu() -> None:
    # This machine (and CI) has no NVIDIA GPU: NVML and nvidia-smi find nothing.
    assert query_gpus() == [] or pytest.skip("this machine has an NVIDIA GPU")
