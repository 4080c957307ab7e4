"""llm_models as the roles read it (nova, llm_model, llama_server, litellm): one model keeps
llama-server's own command line; several get nova-model-residency with one command line per
model on a loopback port of its own, quantized entries after their source, the gateway one
model group each with the fallbacks the entries name."""

from __future__ import annotations

import json
from pathlib import Path

from .layout_play import LOCAL, run_play

SHA = "ab" * 32
MODELS = [
    {"name": "big", "file": "big.gguf", "sha256": SHA, "quantization": "Q8_0",
     "hf_repo": "org/repo", "pin": True},
    {"name": "small", "file": "small.gguf", "sha256": SHA, "quantization": "Q4_0",
     "source": "quantize", "quantize_from": "big", "fallbacks": ["big"], "threads": 1},
    {"name": "mid", "file": "mid.gguf", "sha256": SHA, "quantization": "Q6_K",
     "source": "controller", "controller_path": "/m/mid.gguf", "default": True,
     "ctx_size": 8192, "parallel": 4},
]  # fmt: skip


def evaluate(tmp_path: Path, extra: dict, host_vars: str = "") -> dict:
    out = run_play(
        tmp_path, "local_models.yml", f"[nova_llm_hosts]\nh {LOCAL} {host_vars}\n", extra
    )
    return json.loads((out / "h.json").read_text())


def test_one_model_is_llama_server_itself(tmp_path: Path) -> None:
    found = evaluate(tmp_path, {})
    assert not found["several"]
    assert found["names"] == [found["default"]] == ["DeepSeek-R1-0528-Qwen3-8B-UD-Q8_K_XL"]
    assert "--model /var/lib/nova/models/active.gguf" in found["unit_args"]
    assert "--host 127.0.0.1" in found["unit_args"] and "--port 8080" in found["unit_args"]
    assert [e["source"] for e in found["entries"]] == ["huggingface"]


def test_several_models_get_the_residency_with_a_command_line_each(tmp_path: Path) -> None:
    found = evaluate(tmp_path, {"llm_models": MODELS}, "nova_llama_server_port=9090")
    assert found["several"]
    # The default first, then the list's order.
    assert found["names"] == ["mid", "big", "small"] and found["default"] == "mid"
    # Quantized entries come after the model they are made from.
    assert [e["name"] for e in found["entries"]] == ["big", "mid", "small"]
    assert found["default_file"] == "mid.gguf"
    residency = found["residency"]
    assert (residency["port"], residency["default_model"]) == (9090, "mid")
    assert residency["api_key_file"] == "/run/credentials/nova-llama-server.service/api-key"
    models = {m["name"]: m for m in residency["models"]}
    assert [m["port"] for m in residency["models"]] == [18180, 18181, 18182]
    assert models["mid"]["preload"] and not models["mid"]["pin"]
    assert models["big"]["pin"] and models["big"]["preload"]
    assert not models["small"]["preload"]
    mid = " ".join(models["mid"]["command"])
    assert mid.startswith(
        "/opt/nova/llama.cpp/current/bin/llama-server --host 127.0.0.1 --port 18180"
    )
    assert "--model /var/lib/nova/models/mid.gguf --alias mid" in mid
    assert "--ctx-size 8192 --parallel 4" in mid
    assert "--threads" not in mid
    assert "--threads 1" in " ".join(models["small"]["command"])
    assert models["small"]["quantization"] == "Q4_0"


def test_with_gpu_sizing_each_child_starts_through_it(tmp_path: Path) -> None:
    found = evaluate(
        tmp_path,
        {"llm_models": MODELS, "llama_server_auto_size": True, "nvidia_driver_gpu_present": True,
         "llama_server_sizing_overrides": {"cache_type": "q8_0"}},
    )  # fmt: skip
    command = found["residency"]["models"][0]["command"]
    assert command[:5] == [
        "/usr/local/bin/nova-gpu-sizing", "--require-gpu", "--override", "cache_type=q8_0", "--"
    ]  # fmt: skip
    assert command[5].endswith("/llama-server")


def test_the_gateway_offers_each_model_with_its_fallbacks(tmp_path: Path) -> None:
    found = evaluate(tmp_path, {"llm_models": MODELS})
    assert found["gateway_models"] == [
        {"name": "mid"},
        {"name": "big"},
        {"name": "small", "fallbacks": ["big"]},
    ]
