"""llama_cpp's CUDA architectures: read from the GPUs (nvidia-smi), hashed into the build id,
and a clear failure while the driver cannot answer (a reboot pending) instead of CMake's
"native" failing later or a changed GPU keeping the old build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "cuda_arch.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
DRIVER_DOWN = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)


def resolve(tmp_path: Path, smi: str | None, **extra: object) -> dict:
    """Run the role's resolution with a fake nvidia-smi (None: there is none on PATH)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    if smi is not None:
        script = fake_bin / "nvidia-smi"
        script.write_text(smi)
        script.chmod(0o755)
    out = tmp_path / "out.json"
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "ansible" / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    variables = {
        "out": str(out),
        "fake_bin": str(fake_bin),
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "llama_cpp_cuda": True,
        **extra,
    }
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(PLAYBOOK), "-e", json.dumps(variables)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert out.exists(), result.stdout + result.stderr
    return json.loads(out.read_text())


def smi_printing(*lines: str) -> str:
    return "#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines)


def test_one_gpu_gives_its_compute_capability(tmp_path: Path) -> None:
    got = resolve(tmp_path, smi_printing("9.0"))
    assert got["ok"], got
    assert got["arch"] == "90"
    assert "-DCMAKE_CUDA_ARCHITECTURES=90" in got["args"]


def test_mixed_gpus_give_each_architecture_once(tmp_path: Path) -> None:
    got = resolve(tmp_path, smi_printing("8.6", "9.0", "8.6"))
    assert got["arch"] == "86;90"


def test_a_changed_gpu_is_a_new_build(tmp_path: Path) -> None:
    (tmp_path / "h100").mkdir()
    (tmp_path / "l40").mkdir()
    h100 = resolve(tmp_path / "h100", smi_printing("9.0"))
    l40 = resolve(tmp_path / "l40", smi_printing("8.9"))
    assert h100["build_id"] != l40["build_id"]
    assert "-cuda-" in h100["build_id"]


def test_an_explicit_value_is_used_as_given(tmp_path: Path) -> None:
    got = resolve(tmp_path, None, llama_cpp_cuda_architectures="80;90")
    assert got["ok"], got
    assert "-DCMAKE_CUDA_ARCHITECTURES=80;90" in got["args"]


@pytest.mark.parametrize(
    ("smi", "pending", "says"),
    [
        (f'#!/bin/sh\necho "{DRIVER_DOWN}" >&2\nexit 9\n', True, "waits for a reboot"),
        (None, False, "Check that the NVIDIA driver is loaded"),
        ("#!/bin/sh\nexit 0\n", False, "Check that the NVIDIA driver is loaded"),
    ],
    ids=["driver not loaded, reboot pending", "no nvidia-smi", "no GPU listed"],
)
def test_no_answer_from_the_driver_fails_clearly(
    tmp_path: Path, smi: str | None, pending: bool, says: str
) -> None:
    got = resolve(tmp_path, smi, nvidia_driver_reboot_pending=pending)
    assert not got["ok"]
    assert says in got["msg"]
    assert 'set llama_cpp_cuda_architectures explicitly, e.g. "90"' in got["msg"]
    if smi and "exit 9" in smi:
        assert "couldn't communicate with the NVIDIA driver" in got["msg"]
