"""nvidia_driver and cuda_toolkit in check mode on this host (no GPU, nothing installed).

Package selection is a pure vars computation (vars/main.yml, tasks/select.yml), run for Debian 12
and Ubuntu 22.04/24.04 with their facts given as play vars; GPU detection runs on fake sysfs
trees; the full roles run against this host's real facts, where there is no NVIDIA GPU.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
DISTRIBUTIONS = {
    "debian12": {
        "os_family": "Debian",
        "distribution": "Debian",
        "distribution_major_version": "12",
        "distribution_version": "12.11",
        "distribution_release": "bookworm",
        "kernel": "6.1.0-37-amd64",
        "architecture": "x86_64",
    },
    "ubuntu2204": {
        "os_family": "Debian",
        "distribution": "Ubuntu",
        "distribution_major_version": "22",
        "distribution_version": "22.04",
        "distribution_release": "jammy",
        "kernel": "5.15.0-144-generic",
        "architecture": "x86_64",
    },
    "ubuntu2404": {
        "os_family": "Debian",
        "distribution": "Ubuntu",
        "distribution_major_version": "24",
        "distribution_version": "24.04",
        "distribution_release": "noble",
        "kernel": "6.8.0-63-generic",
        "architecture": "aarch64",
    },
}


def host_has_nvidia_gpu() -> bool:
    for dev in Path("/sys/bus/pci/devices").glob("*"):
        try:
            vendor = (dev / "vendor").read_text().strip()
            klass = (dev / "class").read_text().strip()
        except OSError:
            continue
        if vendor == "0x10de" and klass.startswith("0x03"):
            return True
    return False


def run_playbook(name: str, out: Path, extra: dict) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "ansible" / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "--check", str(PLAYBOOKS / name)]
    cmd += [
        "-e",
        json.dumps({"out": str(out), "ansible_python_interpreter": sys.executable, **extra}),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


def fake_pci_device(root: Path, address: str, vendor: str, klass: str) -> None:
    dev = root / address
    dev.mkdir(parents=True)
    (dev / "vendor").write_text(vendor + "\n")
    (dev / "class").write_text(klass + "\n")
    (dev / "device").write_text("0x2330\n")


@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("select")
    gpu, other, empty = tmp / "pci-gpu", tmp / "pci-other", tmp / "pci-empty"
    fake_pci_device(gpu, "0000:00:02.0", "0x8086", "0x030000")  # Intel VGA
    fake_pci_device(gpu, "0000:17:00.0", "0x10de", "0x030200")  # NVIDIA 3D controller (H100)
    fake_pci_device(other, "0000:17:00.1", "0x10de", "0x040300")  # NVIDIA HD audio
    fake_pci_device(other, "0000:00:02.0", "0x8086", "0x030000")
    empty.mkdir()
    distributions = [{"name": name, "facts": facts} for name, facts in DISTRIBUTIONS.items()]
    out = tmp / "out.json"
    result = run_playbook(
        "select.yml",
        out,
        {"distributions": distributions, "pci_trees": [str(gpu), str(other), str(empty)]},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    data = json.loads(out.read_text())
    data["trees"] = {"gpu": str(gpu), "other": str(other), "empty": str(empty)}
    return data


def test_debian_driver_from_the_distribution(selection: dict) -> None:
    chosen = selection["selected"]["debian12/driver/distro"]
    assert chosen["packages"][:2] == ["nvidia-driver", "firmware-misc-nonfree"]
    assert "linux-headers-6.1.0-37-amd64" in chosen["packages"]
    assert "nvidia-persistenced" in chosen["packages"]


@pytest.mark.parametrize(
    ("distro", "kernel"), [("ubuntu2204", "5.15.0-144-generic"), ("ubuntu2404", "6.8.0-63-generic")]
)
def test_ubuntu_driver_from_the_distribution(selection: dict, distro: str, kernel: str) -> None:
    packages = selection["selected"][f"{distro}/driver/distro"]["packages"]
    assert packages[:2] == ["nvidia-driver-550-server", "nvidia-utils-550-server"]
    assert f"linux-headers-{kernel}" in packages


def test_driver_from_nvidia_repository(selection: dict) -> None:
    sel = selection["selected"]
    debian = sel["debian12/driver/nvidia_repo"]
    assert debian["packages"][0] == "nvidia-open-550"
    assert debian["cuda_keyring_url"] == (
        "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/"
        "cuda-keyring_1.1-1_all.deb"
    )
    assert sel["ubuntu2204/driver/nvidia_repo"]["nvidia_repo_url"].endswith("/ubuntu2204/x86_64/")
    # arm64 servers use NVIDIA's sbsa repository.
    assert sel["ubuntu2404/driver/nvidia_repo"]["nvidia_repo_url"].endswith("/ubuntu2404/sbsa/")


@pytest.mark.parametrize("distro", list(DISTRIBUTIONS))
def test_toolkit_selection(selection: dict, distro: str) -> None:
    sel = selection["selected"]
    repo = sel[f"{distro}/toolkit/nvidia_repo"]
    assert repo["packages"] == ["cuda-toolkit-12-8"]
    assert repo["home"] == "/usr/local/cuda-12.8"
    assert repo["cublas_search_paths"] == [
        "/usr/local/cuda-12.8/lib64",
        "/usr/local/cuda-12.8/targets",
    ]
    distro_pkg = sel[f"{distro}/toolkit/distro"]
    assert distro_pkg["packages"] == ["nvidia-cuda-toolkit"]
    assert distro_pkg["home"] == "/usr"
    arch = DISTRIBUTIONS[distro]["architecture"]
    assert distro_pkg["cublas_search_paths"] == [f"/usr/lib/{arch}-linux-gnu"]
    present = sel[f"{distro}/toolkit/present"]
    assert present["packages"] == []
    assert present["home"] == "/usr/local/cuda"


def test_detection_on_fake_sysfs(selection: dict) -> None:
    detected, trees = selection["detected"], selection["trees"]
    gpu = detected[trees["gpu"]]
    assert gpu["present"] is True
    assert gpu["gpus"] == ["0000:17:00.0 class=0x030200 device=0x2330"]
    assert detected[trees["other"]] == {"present": False, "gpus": []}  # audio function, Intel VGA
    assert detected[trees["empty"]] == {"present": False, "gpus": []}


def fake_toolkit(home: Path, *, nvcc: bool = True, cublas: bool = True) -> Path:
    if nvcc:
        (home / "bin").mkdir(parents=True)
        script = home / "bin" / "nvcc"
        script.write_text(
            "#!/bin/sh\necho 'nvcc: NVIDIA (R) Cuda compiler driver'\n"
            "echo 'Cuda compilation tools, release 12.8, V12.8.93'\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    lib = home / "targets" / "x86_64-linux" / "lib"
    lib.mkdir(parents=True)
    (home / "lib64").symlink_to(lib)
    if cublas:
        (lib / "libcublas.so.12").write_bytes(b"")
        (lib / "libcublas.so").symlink_to("libcublas.so.12")
    return home


@pytest.mark.skipif(host_has_nvidia_gpu(), reason="this host has an NVIDIA GPU")
def test_roles_on_this_host_without_gpu(tmp_path: Path) -> None:
    no_cublas = fake_toolkit(tmp_path / "no-cublas", cublas=False)
    no_nvcc = fake_toolkit(tmp_path / "no-nvcc", nvcc=False)
    good = fake_toolkit(tmp_path / "cuda-12.8")
    out = tmp_path / "out.json"
    # The good home last: the role exports cuda_toolkit_home as a fact, which outranks role vars.
    homes = [str(no_cublas), str(no_nvcc), str(good)]
    result = run_playbook("host.yml", out, {"toolkit_homes": homes})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    data = json.loads(out.read_text())

    assert data["gpu_present"] is False
    assert "No NVIDIA GPU on this host" in result.stdout
    assert "the NVIDIA driver is not installed" in result.stdout
    assert (
        "nvidia_driver_required is true, but this host has no NVIDIA GPU"
        in (data["required_failure"])
    )
    # Nothing was installed: the install tasks never ran.
    assert "Install the NVIDIA driver packages" not in result.stdout

    toolkit = data["toolkit"]
    assert toolkit[str(good)]["ok"] is True
    assert toolkit[str(good)]["home"] == str(good)
    assert toolkit[str(good)]["nvcc"] == f"{good}/bin/nvcc"
    assert any(path.endswith("/libcublas.so") for path in toolkit[str(good)]["cublas"])
    assert toolkit[str(no_cublas)]["ok"] is False
    assert "No libcublas.so under" in toolkit[str(no_cublas)]["msg"]
    assert toolkit[str(no_nvcc)]["ok"] is False
    assert f"No nvcc at {no_nvcc}/bin/nvcc" in toolkit[str(no_nvcc)]["msg"]
