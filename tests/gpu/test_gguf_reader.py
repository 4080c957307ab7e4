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
EMBEDDED = Path("/var/cache/nova-dev/models/SmolLM2-135M-Instruct.Q4_1.gguf")


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


@pytest.mark.skipif(not EMBEDDED.exists(), reason=f"{EMBEDDED} absent")
def test_embedded_model() -> None:
    info = read_model_info(EMBEDDED)
    reference = gguf.GGUFReader(str(EMBEDDED))

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
    assert info.file_size == EMBEDDED.stat().st_size


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nova_gpu_sizing", *args],
        capture_output=True,
        text=True,
        cwd=ROOT / "services",
        check=False,
    )


def test_cli_writes_the_environment_file(tmp_path: Path) -> None:
    model = write_tiny(tmp_path / "tiny.gguf")
    env = tmp_path / "run" / "sized.env"
    result = run_cli(
        "--model", str(model), "--gpu-mib", "16376:200", "--ctx-per-slot", "2048",
        "--parallel", "2", "--override", "ubatch_size=256", "--env-file", str(env),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = env.read_text().splitlines()
    assert lines[-1] == (
        'NOVA_LLAMA_SIZED_ARGS="--n-gpu-layers 999 --ctx-size 4096 --parallel 2 --flash-attn on'
        ' --cache-type-k f16 --cache-type-v f16 --ubatch-size 256"'
    )
    assert all(line.startswith("#") for line in lines[:-1])
    assert "nova-gpu-sizing: chosen: --n-gpu-layers 999" in result.stderr
    assert "nova-gpu-sizing: weights" in result.stderr


def test_cli_cpu_and_errors(tmp_path: Path) -> None:
    model = write_tiny(tmp_path / "tiny.gguf")
    env = tmp_path / "sized.env"
    assert run_cli("--model", str(model), "--no-gpu", "--env-file", str(env)).returncode == 0
    assert "--n-gpu-layers 0" in env.read_text()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    result = run_cli("--model", str(bad), "--no-gpu", "--env-file", str(env))
    assert result.returncode == 1
    assert "bad magic" in result.stderr
    assert not env.exists()  # the unit's static flags apply
    env.write_text("stale")
    result = run_cli("--model", str(model), "--require-gpu", "--gpu-mib", "0", "--no-gpu")
    assert result.returncode == 2  # --no-gpu and --gpu-mib exclude each other
    if not query_gpus():
        result = run_cli("--model", str(model), "--require-gpu", "--env-file", str(env))
        assert result.returncode == 1
        assert "no NVIDIA GPU" in result.stderr
        assert not env.exists()
    result = run_cli("--model", str(model), "--override", "bogus=1")
    assert result.returncode == 1
    assert "unknown override 'bogus'" in result.stderr
