"""scripts/bench-gpu without a GPU: it refuses clearly; its GGUF writer on a tiny shape."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import gguf
import numpy as np
import pytest

from nova_gpu_sizing import query_gpus, read_model_info

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench-gpu"


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("bench_gpu", str(SCRIPT))
    spec = importlib.util.spec_from_loader("bench_gpu", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module
    loader.exec_module(module)
    return module


bench = load_script()
TINY = bench.Shape(
    n_vocab=320, n_embd=64, n_ff=128, n_layer=2, n_head=4, n_head_kv=2, head_dim=16, n_ctx_train=512
)


@pytest.mark.skipif(bool(query_gpus()), reason="this machine has an NVIDIA GPU")
def test_no_gpu_fails_clearly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--model-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no NVIDIA GPU" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing generated, nothing built


def test_qwen3_8b_shape() -> None:
    params = bench.parameter_count(bench.QWEN3_8B)
    assert params == 8_190_735_360
    assert params * 34 / 32 / 1e9 == pytest.approx(8.70, abs=0.01)  # Q8_0 file size, GB


@pytest.mark.parametrize("weights", ["q8_0", "f16"])
def test_tiny_random_gguf(tmp_path: Path, weights: str) -> None:
    path = tmp_path / "tiny.gguf"
    bench.write_random_gguf(path, TINY, weights)
    reader = gguf.GGUFReader(str(path))
    names = [t.name for t in reader.tensors]
    assert names == [name for name, _ in bench.tensor_shapes(TINY)]
    q = next(t for t in reader.tensors if t.name == "blk.1.ffn_down.weight")
    assert q.tensor_type.name == weights.upper()
    assert list(q.shape) == [128, 64]  # ne0 = n_ff (input), ne1 = n_embd
    values = gguf.quants.dequantize(q.data, q.tensor_type)
    assert values.shape == (64, 128)
    assert 0.015 < float(np.std(values)) < 0.025
    norm = next(t for t in reader.tensors if t.name == "output_norm.weight")
    assert np.all(norm.data == 1.0)
    vocab = reader.fields["tokenizer.ggml.tokens"]
    assert len(vocab.data) == TINY.n_vocab
    info = read_model_info(path)
    assert (info.architecture, info.block_count, info.head_count_kv) == ("qwen3", 2, 2)
    assert info.key_length == 16
    assert info.context_length == 512


def test_full_offload_is_read_from_llama_servers_own_log() -> None:
    log = (
        "load_tensors: loading model tensors, this can take a while... (mmap = true)\n"
        "load_tensors: offloading 36 repeating layers to GPU\n"
        "load_tensors: offloaded 37/37 layers to GPU\n"
    )
    assert bench.offloaded_layers(log) == (37, 37)
    assert bench.offloaded_layers(log.replace("37/37", "20/37")) == (20, 37)
    assert bench.offloaded_layers("load_tensors: CPU_Mapped model buffer size = 8.7 GiB\n") is None


def test_cmake_flags_are_the_roles() -> None:
    args = bench.role_cmake_args(Path("/usr/local/cuda-12.8"), "90")
    assert args[0] == "-DCMAKE_BUILD_TYPE=Release"
    assert "-DGGML_NATIVE=ON" in args and "-DBUILD_SHARED_LIBS=OFF" in args
    assert args[-3:] == [
        "-DGGML_CUDA=ON",
        "-DCMAKE_CUDA_ARCHITECTURES=90",
        "-DCMAKE_CUDA_COMPILER=/usr/local/cuda-12.8/bin/nvcc",
    ]
    assert not any("{" in arg for arg in args)
