"""The stdlib GGUF reader against files written by the gguf package, and the sizing CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest

from nova_gpu_sizing import GGUFError, query_gpus, read_model_info
from nova_gpu_sizing.gguf import SkippedArray

ROOT = Path(__file__).resolve().parents[2]


def write_tiny(path: Path, *, endian: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE, **kw: int) -> Path:
    writer = gguf.GGUFWriter(str(path), "qwen3", endianess=endian)
    writer.add_name("tiny")
    writer.add_context_length(kw.get("ctx", 4096))
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_block_count(2)
    writer.add_head_count(4)
    writer.add_head_count_kv(kw.get("kv", 2))
    if "key_length" in kw:
        writer.add_key_length(kw["key_length"])
        writer.add_value_length(kw["key_length"])
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1e6)
    writer.add_token_list([f"t{i}" for i in range(5000)])  # longer than kept: skipped
    writer.add_token_scores([0.0] * 5000)
    writer.add_bool("tiny.flag", True)
    writer.add_array("tiny.small", [1, 2, 3])
    writer.add_tensor("token_embd.weight", np.zeros((16, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_tiny_gguf(tmp_path: Path) -> None:
    info = read_model_info(write_tiny(tmp_path / "tiny.gguf"))
    assert info.version == 3
    assert info.tensor_count == 1
    assert info.architecture == "qwen3"
    assert (info.block_count, info.context_length, info.embedding_length) == (2, 4096, 64)
    assert (info.head_count, info.head_count_kv) == (4, 2)
    assert info.key_length == info.value_length == 16  # embedding / heads when not given
    assert info.file_size == (tmp_path / "tiny.gguf").stat().st_size
    assert info.kv_elements_per_token() == 2 * 2 * 2 * 16
    md = info.metadata
    assert md["general.name"] == "tiny"
    assert md["tiny.flag"] is True
    assert md["tiny.small"] == [1, 2, 3]
    assert md["tokenizer.ggml.tokens"] == SkippedArray(element_type=8, length=5000)
    assert md["qwen3.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-6)


def test_explicit_key_length_and_big_endian(tmp_path: Path) -> None:
    info = read_model_info(
        write_tiny(tmp_path / "be.gguf", endian=gguf.GGUFEndian.BIG, key_length=32, kv=1)
    )
    assert info.key_length == info.value_length == 32
    assert info.head_count_kv == 1
    assert info.context_length == 4096


def test_agrees_with_gguf_package(tmp_path: Path) -> None:
    path = write_tiny(tmp_path / "tiny.gguf")
    reference = gguf.GGUFReader(str(path))
    info = read_model_info(path)
    for key, field in reference.fields.items():
        if key.startswith("GGUF."):
            continue
        if len(field.types) == 1 and field.types[0] != gguf.GGUFValueType.ARRAY:
            assert info.metadata[key] == pytest.approx(field.contents()), key


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GGML" + b"\0" * 20, "bad magic"),
        (b"GGUF\x01\0\0\0" + b"\0" * 16, "unsupported GGUF version 1"),
        (b"GGUF\x03\0\0\0\0\0", "truncated"),
    ],
)
def test_rejects_bad_files(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(GGUFError, match=message):
        read_model_info(path)


def test_embedded_model(embedded_model: Path) -> None:
    info = read_model_info(embedded_model)
    reference = gguf.GGUFReader(str(embedded_model))

    def ref(key: str) -> object:
        return reference.fields[key].contents()

    arch = ref("general.architecture")
    assert info.architecture == arch == "llama"
    assert info.block_count == ref(f"{arch}.block_count") == 30
    assert info.context_length == ref(f"{arch}.context_length")
    assert info.embedding_length == ref(f"{arch}.embedding_length") == 576
    assert info.head_count == ref(f"{arch}.attention.head_count") == 9
    assert info.head_count_kv == ref(f"{arch}.attention.head_count_kv") == 3
    assert info.key_length == 64
    assert info.tensor_count == len(reference.tensors)
    assert info.file_size == embedded_model.stat().st_size


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nova_gpu_sizing", *args],
        capture_output=True,
        text=True,
        cwd=ROOT / "services",
        check=False,
    )


def echo_server(tmp_path: Path) -> Path:
    """A stand-in for llama-server that prints its command line."""
    script = tmp_path / "llama-server"
    script.write_text('#!/bin/sh\necho "$0 $*"\n')
    script.chmod(0o755)
    return script


def test_cli_execs_the_complete_sized_command_line(tmp_path: Path) -> None:
    model = write_tiny(tmp_path / "tiny.gguf")
    server = echo_server(tmp_path)
    request = [
        "--host", "127.0.0.1", "--model", str(model), "--ctx-size", "4096", "--parallel", "2",
        "--n-gpu-layers", "0", "--flash-attn", "auto", "-ub", "512", "--jinja", "--metrics",
    ]  # fmt: skip
    result = run_cli(
        "--gpu-mib", "16376:200", "--override", "ubatch_size=256", "--", str(server), *request
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        str(server), "--host", "127.0.0.1", "--model", str(model), "--jinja", "--metrics",
        "--n-gpu-layers", "999", "--ctx-size", "4096", "--parallel", "2", "--flash-attn", "on",
        "--cache-type-k", "f16", "--cache-type-v", "f16", "--ubatch-size", "256",
    ]  # fmt: skip
    assert "nova-gpu-sizing: requested --n-gpu-layers 0 -> 999" in result.stderr
    assert "nova-gpu-sizing: chosen: --n-gpu-layers 999" in result.stderr
    assert "nova-gpu-sizing: weights" in result.stderr


def test_cli_dry_run_and_plan(tmp_path: Path) -> None:
    model = write_tiny(tmp_path / "tiny.gguf")
    dry = run_cli("--no-gpu", "--dry-run", "--", "/nonexistent/llama-server", "-m", str(model))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.split()[:3] == ["/nonexistent/llama-server", "-m", str(model)]
    assert "--n-gpu-layers 0" in dry.stdout
    plan = run_cli("--model", str(model), "--no-gpu", "--json")
    assert plan.returncode == 0, plan.stderr
    assert '"n_gpu_layers": 0' in plan.stdout


def test_cli_falls_back_to_the_request(tmp_path: Path) -> None:
    model = write_tiny(tmp_path / "tiny.gguf")
    server = echo_server(tmp_path)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    request = ["--model", str(bad), "--ctx-size", "4096", "--n-gpu-layers", "0"]
    result = run_cli("--no-gpu", "--", str(server), *request)
    assert result.returncode == 0  # llama-server ran, with the request as given
    assert result.stdout.split() == [str(server), *request]
    assert "bad magic" in result.stderr
    assert "llama-server starts with the requested flags" in result.stderr
    result = run_cli("--override", "bogus=1", "--", str(server), "--model", str(model))
    assert result.stdout.split() == [str(server), "--model", str(model)]
    assert "unknown override 'bogus'" in result.stderr
    if not query_gpus():
        # A required GPU that is missing: llama-server is not started on the CPU.
        result = run_cli("--require-gpu", "--", str(server), "--model", str(model))
        assert result.returncode == 69
        assert result.stdout == ""
        assert "no NVIDIA GPU" in result.stderr
        assert "does not start on the CPU" in result.stderr
    missing = run_cli("--no-gpu", "--", str(tmp_path / "absent"), "--model", str(model))
    assert missing.returncode == 127
    assert "cannot run" in missing.stderr
    assert run_cli("--no-gpu", "--gpu-mib", "0", "--model", str(model)).returncode == 2
    assert run_cli("--model", str(bad), "--no-gpu").returncode == 1
