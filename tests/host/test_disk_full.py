"""A full disk in the model directory on the real host, before and during a download: a clear
error, the previous model untouched, no partial file at the destination.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from tests.standins.huggingface_hub_server import HubStandin

from .hostlib import NOVA_HOST, Host

pytestmark = pytest.mark.host

SMALL_DIR = "/var/lib/nova/models-small"
FETCH = "nova-model-fetch"


def _container_pid1(host: Host) -> int:
    nspawn = Path(f"/run/nova-host/{host.name}/nspawn.pid").read_text().strip()
    return int(subprocess.check_output(["pgrep", "-P", nspawn], text=True).split()[0])


@contextlib.contextmanager
def small_tmpfs(host: Host, size: str) -> object:
    """A ``size`` tmpfs on SMALL_DIR: mounted inside the container if it may mount, else from
    this machine into the container's mount namespace (``nsenter``; nspawn withholds
    CAP_SYS_ADMIN). Yields how it was mounted."""
    host.ssh(f"mkdir -p {SMALL_DIR}")
    how = "mount in the container"
    inside = subprocess.run(
        [str(NOVA_HOST), "ssh", host.name, f"mount -t tmpfs -o size={size} tmpfs {SMALL_DIR}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode != 0:
        how = f"nsenter into the container (mount inside: {inside.stderr.strip()})"
        mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", SMALL_DIR]
        pid1 = str(_container_pid1(host))
        subprocess.run(["nsenter", "-t", pid1, "-m", "--", *mount], check=True)
    try:
        assert host.ssh(f"findmnt -no FSTYPE {SMALL_DIR}") == "tmpfs"
        yield how
    finally:
        if inside.returncode == 0:
            host.ssh(f"umount {SMALL_DIR}", check=False)
        else:
            subprocess.run(
                ["nsenter", "-t", str(_container_pid1(host)), "-m", "--", "umount", SMALL_DIR],
                check=False,
            )


def _fetch_cmd(hub: object, dest: str) -> str:
    return (
        f"cd / && HF_ENDPOINT={hub.endpoint} {FETCH} hf --repo {hub.repo} --file {hub.filename}"  # type: ignore[attr-defined]
        f" --revision main --sha256 {hub.sha256} --dest {dest}"  # type: ignore[attr-defined]
        " --reserve-bytes 0 --retries 0"
    )


def _listing(host: Host) -> str:
    return host.ssh(f"cd {SMALL_DIR} && find . -type f -printf '%p %s\\n' | sort; df -k .")


def test_disk_full_during_model_download(host: Host) -> None:
    """The real ``nova-model-fetch hf`` on the host, against the Hugging Face stand-in on this
    machine (same network namespace), with ``--dest`` on a 20 MiB tmpfs that also holds a
    "previous model" (2 MiB):

    a. the file (30 MiB) is bigger than the free space: the pre-check refuses it;
    b. the file (8 MiB, throttled to 2 MiB/s) fits, but the filesystem is filled up by
       another writer once the download has started: ENOSPC mid-download.

    Both: exit 1, one error line that mentions the space, the previous model's sha256
    unchanged, nothing at ``--dest`` (nor its ``.partial``). Where the resumable download
    (``.download-cache/<sha256>.incomplete``) stays is printed, not asserted (it is kept by
    design, for a later run to resume)."""
    previous = f"{SMALL_DIR}/previous.gguf"
    dest = f"{SMALL_DIR}/new.gguf"
    with small_tmpfs(host, "20m") as how:
        print(f"\n[disk] 20 MiB tmpfs on {SMALL_DIR}: {how}", flush=True)
        host.ssh(f"head -c 2097152 /dev/urandom > {previous}")
        previous_sha = host.ssh(f"sha256sum {previous}").split()[0]

        # a. Bigger than the free space: refused before downloading.
        big = bytes(range(256)) * (30 * 4096)  # 30 MiB
        with HubStandin(repo="rel/model", filename="big.gguf", content=big) as hub:
            proc = subprocess.run(
                [str(NOVA_HOST), "ssh", host.name, _fetch_cmd(hub, dest)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            gets = len(hub.gets())
        print(f"[disk] a. pre-check: exit {proc.returncode}: {proc.stderr.strip()}", flush=True)
        print(f"[disk] a. body GETs: {gets}; files now:\n{_listing(host)}", flush=True)
        assert proc.returncode == 1
        assert "not enough free disk space" in proc.stderr
        assert gets == 0
        assert host.ssh(f"sha256sum {previous}").split()[0] == previous_sha
        assert host.ssh(f"ls {dest} {dest}.partial 2>/dev/null || true") == ""

        # b. Fits, but the disk fills up during the download.
        content = hashlib.sha256(b"x").digest() * (8 * 32768)  # 8 MiB
        with HubStandin(
            repo="rel/model", filename="mid.gguf", content=content, bytes_per_second=2 << 20
        ) as hub:
            partial = f"{SMALL_DIR}/.download-cache/{hub.sha256}.incomplete"
            fetch = subprocess.Popen(
                [str(NOVA_HOST), "ssh", host.name, _fetch_cmd(hub, dest)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            t0 = time.monotonic()
            while host.ssh(f"stat -c %s {partial} 2>/dev/null || echo 0") in ("", "0"):
                assert fetch.poll() is None, fetch.communicate()
                assert time.monotonic() - t0 < 30, "the download did not start"
                time.sleep(0.1)
            filled = host.ssh(f"dd if=/dev/zero of={SMALL_DIR}/filler bs=64k 2>&1 || true")
            stdout, stderr = fetch.communicate(timeout=120)
        listing = _listing(host)
        print(f"[disk] b. filler: {filled.splitlines()[-1] if filled else ''}", flush=True)
        print(f"[disk] b. mid-download: exit {fetch.returncode}: {stderr.strip()}", flush=True)
        print(f"[disk] b. files now:\n{listing}", flush=True)
        assert fetch.returncode == 1, (stdout, stderr)
        error = [line for line in stderr.splitlines() if "error" in line]
        assert error and "space" in error[-1].lower(), stderr
        assert host.ssh(f"sha256sum {previous}").split()[0] == previous_sha
        assert host.ssh(f"ls {dest} {dest}.partial 2>/dev/null || true") == ""
        host.ssh(f"rm -rf {SMALL_DIR}/filler {SMALL_DIR}/.download-cache")
    host.ssh(f"rmdir {SMALL_DIR}", check=False)
