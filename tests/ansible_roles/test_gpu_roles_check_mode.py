"""nvidia_driver and cuda_toolkit in check mode on this host (no GPU, nothing installed).

Package selection is a pure vars computation (vars/main.yml, tasks/select.yml), run for Debian
12/13 and Ubuntu 22.04/24.04 with their facts given as play vars: every OS x source x branch x
module flavour (and Secure Boot) against the names NVIDIA and Canonical document, written out
here independently of the role's table; the checks that stop a run before installing anything
(branch, flavour vs GPU generation, Secure Boot, toolkit vs driver). GPU detection runs on fake
sysfs trees; the full roles run against this host's real facts, where there is no NVIDIA GPU,
and as if it were a fresh GPU host (fake PCI tree, local stand-in repository), in check mode.
"""

from __future__ import annotations

import json
import os
import shutil
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


def run_playbook(
    name: str, out: Path, extra: dict, *, diff: bool = False, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "ansible" / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "--check", str(PLAYBOOKS / name)]
    if diff:
        cmd.append("--diff")
    cmd += [
        "-e",
        json.dumps({"out": str(out), "ansible_python_interpreter": sys.executable, **extra}),
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


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


@pytest.mark.parametrize("distro", list(DISTRIBUTIONS))
def test_toolkit_selection(selection: dict, distro: str) -> None:
    sel = selection["selected"]
    repo = sel[f"{distro}/toolkit/nvidia_repo"]
    # What the llama.cpp build needs, not cuda-toolkit-12-8 (Nsight, GUI tools).
    assert repo["packages"] == [
        "cuda-nvcc-12-8",
        "cuda-cudart-dev-12-8",
        "cuda-driver-dev-12-8",
        "cuda-cccl-12-8",
        "libcublas-dev-12-8",
    ]
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


# --- The driver package table: every OS x source x branch x module flavour ---

HOSTS = {
    **DISTRIBUTIONS,
    "debian13": {
        "os_family": "Debian",
        "distribution": "Debian",
        "distribution_major_version": "13",
        "distribution_version": "13.1",
        "distribution_release": "trixie",
        "kernel": "6.12.41+deb13-amd64",
        "architecture": "x86_64",
    },
}
# The running kernel's flavour: its headers metapackage (DKMS) and signed modules (Ubuntu).
KERNEL_FLAVOURS = {
    "debian12": "amd64",
    "debian13": "amd64",
    "ubuntu2204": "generic",
    "ubuntu2404": "generic",
}
DEBIAN_BRANCHES = {"debian12": "535", "debian13": "550"}
UBUNTU_BRANCHES = ["535", "570", "580"]
NVIDIA_REPO_BRANCHES = ["550", "570", "580", "590"]
FLAVOURS = ["open", "proprietary"]
H100 = "0000:17:00.0 class=0x030200 device=0x2330"
V100 = "0000:18:00.0 class=0x030200 device=0x1db4"
P100 = "0000:19:00.0 class=0x030200 device=0x15f8"
RTX5090 = "0000:01:00.0 class=0x030000 device=0x2b85"


def expected_packages(
    host: str, source: str, branch: str, flavour: str, secure_boot: bool
) -> tuple[list[str], list[str]]:
    """(installed first, then) from NVIDIA's installation guide and Canonical's packaging."""
    debian = host.startswith("debian")
    headers = f"linux-headers-{KERNEL_FLAVOURS[host]}"
    if source == "distro" and debian:
        kernel = "nvidia-open-kernel-dkms" if flavour == "open" else "nvidia-kernel-dkms"
        return [], [
            "nvidia-driver",
            kernel,
            "firmware-misc-nonfree",
            "nvidia-smi",
            "libcuda1",
            "nvidia-persistenced",
            "nvidia-modprobe",
            headers,
        ]
    if source == "distro":
        open_ = "-open" if flavour == "open" else ""
        utils = f"nvidia-utils-{branch}-server"
        if secure_boot:  # Canonical's signed prebuilt modules: no DKMS, no headers
            return [], [
                f"linux-modules-nvidia-{branch}-server{open_}-{KERNEL_FLAVOURS[host]}",
                f"nvidia-headless-no-dkms-{branch}-server{open_}",
                utils,
                "nvidia-modprobe",
            ]
        return [], [f"nvidia-headless-{branch}-server{open_}", utils, "nvidia-modprobe", headers]
    first: list[str] = []
    if int(branch) >= 590:
        first = [f"nvidia-driver-pinning-{branch}"]
        driver = ["nvidia-open" if flavour == "open" else "cuda-drivers"]
    elif flavour == "open" and int(branch) >= 560:
        driver = [f"nvidia-open-{branch}"]
    elif flavour == "open":
        driver = [f"nvidia-kernel-open-{branch}", f"cuda-drivers-{branch}"]
    else:
        driver = [f"cuda-drivers-{branch}"]
    # On Ubuntu nvidia-persistenced is a virtual name (nvidia-compute-utils-<branch>).
    persistenced = ["nvidia-persistenced"] if debian else []
    return first, [*driver, *persistenced, "nvidia-modprobe", headers]


def table_cases() -> list[dict]:
    cases = []
    for host in HOSTS:
        debian = host.startswith("debian")
        combos = [("nvidia_repo", b, False) for b in NVIDIA_REPO_BRANCHES]
        if debian:
            combos += [("distro", DEBIAN_BRANCHES[host], False)]
            # Secure Boot with the DKMS key enrolled: the same packages, DKMS signs them.
            combos += [("nvidia_repo", "580", True)]
        else:
            combos += [("distro", b, sb) for b in UBUNTU_BRANCHES for sb in (False, True)]
        for source, branch, sb in combos:
            for flavour in FLAVOURS:
                cases.append(
                    {
                        "name": f"{host}/{source}/{branch}/{flavour}" + ("/sb" if sb else ""),
                        "host": host,
                        "source": source,
                        "branch": branch,
                        "flavor": flavour,
                        "secure_boot": sb,
                        "mok_enrolled": sb and (debian or source == "nvidia_repo"),
                        "toolkit": False,
                    }
                )
    return cases


TABLE_CASES = table_cases()
JAMMY_HWE = {**HOSTS["ubuntu2204"], "kernel": "6.8.0-60-generic"}
# Named cases: (case, expected outcome). "fail": a substring of the failure message.
NAMED_CASES = {
    # nvidia_driver_source: auto
    "auto-debian12": ({"host": "debian12", "gpus": [H100]}, {"source": "nvidia_repo"}),
    "auto-debian13": (
        {"host": "debian13", "gpus": [H100], "toolkit_version": "13.0"},
        {"source": "nvidia_repo"},
    ),
    "auto-ubuntu2204": ({"host": "ubuntu2204", "gpus": [H100]}, {"source": "distro"}),
    # the module flavour from the GPU generation
    "flavour-hopper": ({"host": "ubuntu2404", "gpus": [H100]}, {"flavor": "open"}),
    "flavour-blackwell": ({"host": "ubuntu2404", "gpus": [RTX5090]}, {"flavor": "open"}),
    "flavour-pascal": ({"host": "ubuntu2404", "gpus": [P100]}, {"flavor": "proprietary"}),
    "flavour-mixed": ({"host": "ubuntu2404", "gpus": [H100, V100]}, {"flavor": "proprietary"}),
    "flavour-pinned": (
        {"host": "ubuntu2404", "gpus": [H100], "flavor": "proprietary"},
        {"flavor": "proprietary"},
    ),
    "open-on-pascal": (
        {"host": "ubuntu2404", "gpus": [P100], "flavor": "open"},
        {"fail": "the open modules\nneed Turing or newer"},
    ),
    "proprietary-on-blackwell": (
        {"host": "ubuntu2404", "gpus": [RTX5090], "flavor": "proprietary"},
        {"fail": "Blackwell (0x2900 and up) needs the open"},
    ),
    "blackwell-on-550": (
        {"host": "ubuntu2404", "gpus": [RTX5090], "branch": "550", "source": "nvidia_repo"},
        {"fail": "branch 570 or later"},
    ),
    "pascal-on-590": (
        {"host": "debian12", "gpus": [P100], "branch": "590"},
        {"fail": "branch 590 dropped Maxwell, Pascal and Volta"},
    ),
    # Debian ships one branch per release
    "debian12-distro-580": (
        {"host": "debian12", "source": "distro"},
        {"fail": "Debian bookworm ships NVIDIA driver branch 535 only"},
    ),
    # Secure Boot
    "sb-debian12-nvidia-repo": (
        {"host": "debian12", "secure_boot": True},
        {"fail": "mokutil --import /var/lib/dkms/mok.pub"},
    ),
    "sb-debian13-distro": (
        {"host": "debian13", "source": "distro", "branch": "550", "secure_boot": True},
        {"fail": "Enroll MOK"},
    ),
    "sb-ubuntu-nvidia-repo": (
        {"host": "ubuntu2404", "source": "nvidia_repo", "secure_boot": True},
        {"fail": "Canonical's signed modules"},
    ),
    "sb-ubuntu-distro": (
        {"host": "ubuntu2204", "gpus": [H100], "secure_boot": True},
        {
            "signing": "signed",
            "packages": [
                "linux-modules-nvidia-580-server-open-generic",
                "nvidia-headless-no-dkms-580-server-open",
                "nvidia-utils-580-server",
                "nvidia-modprobe",
            ],
        },
    ),
    "sb-ubuntu-hwe": (
        {"facts": JAMMY_HWE, "flavor": "proprietary", "secure_boot": True},
        {"packages_first": "linux-modules-nvidia-580-server-generic-hwe-22.04"},
    ),
    # headers: the flavour metapackage, never linux-headers-<running kernel>
    "headers-debian-cloud": (
        {"facts": {**HOSTS["debian12"], "kernel": "6.1.0-37-cloud-amd64"}},
        {"headers": "linux-headers-cloud-amd64"},
    ),
    "headers-debian-arm64": (
        {"facts": {**HOSTS["debian12"], "kernel": "6.1.0-37-arm64", "architecture": "aarch64"}},
        {"headers": "linux-headers-arm64"},
    ),
    "headers-trixie": ({"host": "debian13", "toolkit": False}, {"headers": "linux-headers-amd64"}),
    "headers-ubuntu-hwe": ({"facts": JAMMY_HWE}, {"headers": "linux-headers-generic-hwe-22.04"}),
    "headers-ubuntu-noble-ga": ({"host": "ubuntu2404"}, {"headers": "linux-headers-generic"}),
    "headers-ubuntu-aws": (
        {"facts": {**HOSTS["ubuntu2404"], "kernel": "6.8.0-1030-aws"}},
        {"headers": "linux-headers-aws"},
    ),
    # the toolkit against the driver and NVIDIA's repository
    "toolkit-12.8-on-debian-535": (
        {"host": "debian12", "source": "distro", "branch": "535"},
        {"fail": "CUDA 12.8 needs NVIDIA driver 570.26 or newer"},
    ),
    "toolkit-12.8-on-550": (
        {"host": "ubuntu2204", "source": "nvidia_repo", "branch": "550"},
        {"fail": "this host gets driver branch 550"},
    ),
    "toolkit-12.2-on-ubuntu-535": (
        {"host": "ubuntu2204", "branch": "535", "toolkit_version": "12.2"},
        {"toolkit_minimum": "535.54.03"},
    ),
    "toolkit-distro-on-debian-535": (
        {"host": "debian12", "source": "distro", "branch": "535", "toolkit_source": "distro"},
        {"toolkit_minimum": "520.61.05"},
    ),
    "toolkit-12.8-on-trixie": (
        {"host": "debian13"},
        {"fail": "carries CUDA 13.0 and later only, and cuda_toolkit_version is 12.8"},
    ),
    "toolkit-13.0-on-trixie": (
        {"host": "debian13", "toolkit_version": "13.0"},
        {
            "toolkit_packages": [
                "cuda-nvcc-13-0",
                "cuda-cudart-dev-13-0",
                "cuda-driver-dev-13-0",
                "cuda-cccl-13-0",
                "libcublas-dev-13-0",
            ],
            "toolkit_minimum": "580.65.06",
        },
    ),
}


def case_payload(name: str, case: dict) -> dict:
    facts = case.get("facts") or HOSTS[case["host"]]
    return {**{k: v for k, v in case.items() if k != "host"}, "name": name, "facts": facts}


# Cases that need the role's tasks (checks that fail, the toolkit's selection); the others need
# only the variables, evaluated all at once by table.yml (one include_role per case is slow).
ROLE_CASES = [
    name
    for name, (case, expected) in NAMED_CASES.items()
    if "fail" in expected
    or any(key.startswith("toolkit") for key in expected)
    or name.startswith("auto-")
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("cases")
    payload = [case_payload(case["name"], case) for case in TABLE_CASES]
    payload += [case_payload(name, case) for name, (case, _) in NAMED_CASES.items()]
    out = tmp / "table.json"
    result = run_playbook("table.yml", out, {"cases": payload})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    outcomes = {
        name: {"ok": not driver["secure_boot_blocked"], "driver": driver, "toolkit": None}
        for name, driver in json.loads(out.read_text()).items()
    }
    payload = [case_payload(name, NAMED_CASES[name][0]) for name in ROLE_CASES]
    out = tmp / "cases.json"
    result = run_playbook("cases.yml", out, {"cases": payload}, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    outcomes.update(json.loads(out.read_text()))
    return outcomes


@pytest.mark.parametrize("case", TABLE_CASES, ids=[c["name"] for c in TABLE_CASES])
def test_package_table(cases: dict, case: dict) -> None:
    outcome = cases[case["name"]]
    assert outcome["ok"] is True, outcome
    driver = outcome["driver"]
    first, packages = expected_packages(
        case["host"], case["source"], case["branch"], case["flavor"], case["secure_boot"]
    )
    assert driver["first_packages"] == first
    assert driver["packages"] == packages
    assert driver["source"] == case["source"]
    assert driver["flavor"] == case["flavor"]
    signed = (
        case["secure_boot"] and case["source"] == "distro" and case["host"].startswith("ubuntu")
    )
    assert driver["signing"] == ("signed" if signed else "dkms")
    # Never the running kernel's own headers (gone from the archive after an upgrade).
    assert not any(p.startswith("linux-headers-") and p[14:15].isdigit() for p in packages)


def test_the_table_covers_every_supported_combination() -> None:
    names = {c["name"] for c in TABLE_CASES}
    for host in HOSTS:
        for flavour in FLAVOURS:
            for branch in NVIDIA_REPO_BRANCHES:
                assert f"{host}/nvidia_repo/{branch}/{flavour}" in names
            branches = [DEBIAN_BRANCHES[host]] if host in DEBIAN_BRANCHES else UBUNTU_BRANCHES
            for branch in branches:
                assert f"{host}/distro/{branch}/{flavour}" in names


@pytest.mark.parametrize("name", list(NAMED_CASES))
def test_named_case(cases: dict, name: str) -> None:
    outcome, expected = cases[name], NAMED_CASES[name][1]
    if "fail" in expected:
        assert outcome["ok"] is False, outcome
        # Messages are folded YAML: compare with whitespace normalised.
        assert " ".join(expected["fail"].split()) in " ".join(outcome["msg"].split())
        return
    assert outcome["ok"] is True, outcome
    driver, toolkit = outcome["driver"], outcome["toolkit"]
    for key in ("source", "flavor", "signing", "packages"):
        if key in expected:
            assert driver[key] == expected[key]
    if "packages_first" in expected:
        assert driver["packages"][0] == expected["packages_first"]
    if "headers" in expected:
        assert [p for p in driver["packages"] if p.startswith("linux-headers-")] == [
            expected["headers"]
        ]
    if "toolkit_packages" in expected:
        assert toolkit["packages"] == expected["toolkit_packages"]
    if "toolkit_minimum" in expected:
        assert toolkit["driver_minimum"] == expected["toolkit_minimum"]


def test_default_branch_meets_the_default_toolkit(cases: dict) -> None:
    # Defaults only (branch 580, CUDA 12.8) on each OS: no failure, and 580 >= 570.26.
    for name in ("auto-debian12", "auto-ubuntu2204"):
        outcome = cases[name]
        assert outcome["ok"] is True, outcome
        assert outcome["driver"]["branch"] == "580"
        assert outcome["toolkit"]["version"] == "12.8"
        assert outcome["toolkit"]["driver_minimum"] == "570.26"


# --- Whole roles in check mode ---


def fake_keyring_repo(root: Path) -> str:
    """A stand-in for NVIDIA's repository: only cuda-keyring_1.1-1_all.deb, for debian12."""
    pkg = root / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: cuda-keyring\nVersion: 1.1-1\nArchitecture: all\n"
        "Maintainer: tests <tests@example.invalid>\nDescription: stand-in\n"
    )
    repo = root / "repos"
    dest = repo / "debian12" / "x86_64"
    dest.mkdir(parents=True)
    subprocess.run(
        ["dpkg-deb", "--build", str(pkg), str(dest / "cuda-keyring_1.1-1_all.deb")],
        check=True,
        capture_output=True,
    )
    return f"file://{repo}"


def this_host_is(distribution: str) -> bool:
    try:
        return f"ID={distribution}\n" in Path("/etc/os-release").read_text()
    except OSError:
        return False


@pytest.mark.skipif(host_has_nvidia_gpu(), reason="this host has an NVIDIA GPU")
@pytest.mark.skipif(
    not (shutil.which("dpkg-deb") and this_host_is("debian")), reason="needs a Debian host"
)
def test_check_mode_on_a_fresh_gpu_host(tmp_path: Path) -> None:
    pci = tmp_path / "pci"
    fake_pci_device(pci, "0000:17:00.0", "0x10de", "0x030200")  # H100
    out = tmp_path / "out.json"
    extra = {
        "pci_tree": str(pci),
        "repo_url": fake_keyring_repo(tmp_path),
        "marker": str(tmp_path / "reboot-due"),
    }
    result = run_playbook("fresh_gpu_host.yml", out, extra, diff=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["driver"]["source"] == "nvidia_repo"  # Debian: auto
    assert data["driver"]["flavor"] == "open"  # Hopper
    assert data["driver"]["packages"][0] == "nvidia-open-580"
    assert data["installing"] is True
    assert data["reboot_pending"] is True
    assert data["toolkit_checkable"] is False
    assert "WARNING: the NVIDIA driver needs a reboot" in result.stdout
    # The diffs: contrib for NVIDIA's repository, the apt pin, persistence mode on, no write.
    assert "Components: contrib non-free non-free-firmware" in result.stdout
    assert "Pin-Priority: 600" in result.stdout
    assert "ExecStart=/usr/bin/nvidia-persistenced --verbose" in result.stdout
    assert "Wants=nvidia-persistenced.service" in result.stdout
    assert not (tmp_path / "reboot-due").exists()


@pytest.mark.skipif(host_has_nvidia_gpu(), reason="this host has an NVIDIA GPU")
def test_one_reboot_then_a_diagnosis(tmp_path: Path) -> None:
    earlier = tmp_path / "earlier-boot"
    earlier.write_text("00000000-0000-0000-0000-000000000000\n")
    out = tmp_path / "out.json"
    extra = {"marker_earlier_boot": str(earlier), "marker_missing": str(tmp_path / "none")}
    result = run_playbook("reboot_diagnose.yml", out, extra)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["pending_first_time"] is True
    # Already rebooted since the driver went in and still no module: no second reboot...
    assert data["pending_after_reboot"] is False
    # ...but a failure that says what was found.
    diagnosis = " ".join(data["diagnosis"].split())
    assert "The nvidia kernel module is not loaded" in diagnosis
    assert "The play does not reboot again" in diagnosis
    assert "Cause:" in diagnosis
    assert "Secure Boot: enabled" in diagnosis
    assert "DKMS:" in diagnosis
    assert "Kernel log:" in diagnosis
