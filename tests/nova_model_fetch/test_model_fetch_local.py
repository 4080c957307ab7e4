"""`nova-model-fetch check` and `install-file` (no network)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from .conftest import Cli, MiB, file_sha256, sha256


@pytest.fixture
def model(tmp_path: Path) -> tuple[bytes, str]:
    data = os.urandom(MiB)
    return data, sha256(data)


def stage(tmp_path: Path, data: bytes, name: str = "staged.gguf") -> Path:
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    path = staging / name
    path.write_bytes(data)
    return path


def test_check_absent(cli: Cli, dest: Path, model: tuple[bytes, str]) -> None:
    result = cli("check", "--dest", str(dest), "--sha256", model[1])
    assert result.returncode == 0, result.stderr
    assert result.json["present"] is False
    assert result.json["changed"] is False


def test_install_good_file_then_again_is_unchanged(
    cli: Cli, tmp_path: Path, dest: Path, model: tuple[bytes, str]
) -> None:
    data, digest = model
    staged = stage(tmp_path, data)
    result = cli("install-file", "--source", str(staged), "--dest", str(dest), "--sha256", digest)
    assert result.returncode == 0, result.stderr
    assert result.json["changed"] is True
    assert result.json["size"] == len(data)
    assert dest.read_bytes() == data
    assert not staged.exists()
    stamp = json.loads(Path(f"{dest}.sha256-stamp").read_text())
    assert stamp == {
        "sha256": digest,
        "size": len(data),
        "mtime_ns": dest.stat().st_mtime_ns,
    }

    staged = stage(tmp_path, data)
    again = cli("install-file", "--source", str(staged), "--dest", str(dest), "--sha256", digest)
    assert again.returncode == 0, again.stderr
    assert again.json["changed"] is False
    assert not staged.exists()

    check = cli("check", "--dest", str(dest), "--sha256", digest.upper())
    assert check.returncode == 0
    assert check.json["present"] is True
    assert check.json["rehashed"] is False


def test_install_keep_source_copies(
    cli: Cli, tmp_path: Path, dest: Path, model: tuple[bytes, str]
) -> None:
    data, digest = model
    staged = stage(tmp_path, data)
    result = cli(
        "install-file",
        "--source",
        str(staged),
        "--dest",
        str(dest),
        "--sha256",
        digest,
        "--keep-source",
    )
    assert result.returncode == 0, result.stderr
    assert staged.read_bytes() == data
    assert dest.read_bytes() == data
    assert not Path(f"{dest}.partial").exists()


def test_install_from_another_filesystem(
    cli: Cli, tmp_path: Path, dest: Path, model: tuple[bytes, str]
) -> None:
    shm = Path("/dev/shm")
    if (
        not shm.is_dir()
        or not os.access(shm, os.W_OK)
        or shm.stat().st_dev == dest.parent.stat().st_dev
    ):
        pytest.skip("no second writable filesystem")
    data, digest = model
    staged = shm / f"nova-model-fetch-test-{os.getpid()}-{tmp_path.name}.gguf"
    staged.write_bytes(data)
    try:
        result = cli(
            "install-file", "--source", str(staged), "--dest", str(dest), "--sha256", digest
        )
        assert result.returncode == 0, result.stderr
        assert dest.read_bytes() == data
        assert not staged.exists()
        assert not Path(f"{dest}.partial").exists()
    finally:
        staged.unlink(missing_ok=True)


def test_install_bad_file_is_deleted_and_dest_untouched(
    cli: Cli, tmp_path: Path, dest: Path, model: tuple[bytes, str]
) -> None:
    _, digest = model
    bad = os.urandom(MiB)
    staged = stage(tmp_path, bad)
    result = cli("install-file", "--source", str(staged), "--dest", str(dest), "--sha256", digest)
    assert result.returncode == 1
    assert result.stdout == ""
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert digest in message and sha256(bad) in message and str(staged) in message
    assert not staged.exists()
    assert not dest.exists()

    old = os.urandom(MiB)
    dest.write_bytes(old)
    staged = stage(tmp_path, bad)
    result = cli("install-file", "--source", str(staged), "--dest", str(dest), "--sha256", digest)
    assert result.returncode == 1
    assert dest.read_bytes() == old
    assert not staged.exists()


def test_check_rehashes_when_size_or_mtime_changes(
    cli: Cli, tmp_path: Path, dest: Path, model: tuple[bytes, str]
) -> None:
    data, digest = model
    shutil.copyfile(stage(tmp_path, data), dest)

    first = cli("check", "--dest", str(dest), "--sha256", digest)
    assert first.json["present"] is True
    assert first.json["rehashed"] is True
    second = cli("check", "--dest", str(dest), "--sha256", digest)
    assert second.json["rehashed"] is False

    # Same size, new content and mtime: the stamp is no longer trusted.
    st = dest.stat()
    dest.write_bytes(os.urandom(len(data)))
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    changed = cli("check", "--dest", str(dest), "--sha256", digest)
    assert changed.returncode == 0
    assert changed.json["present"] is False
    assert changed.json["rehashed"] is True
    assert changed.json["actual_sha256"] == file_sha256(dest)

    # Different size.
    dest.write_bytes(data + b"x")
    grown = cli("check", "--dest", str(dest), "--sha256", digest)
    assert grown.json["present"] is False
    assert grown.json["rehashed"] is True
    assert grown.json["size"] == len(data) + 1


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--dest", "x.gguf", "--sha256", "not-a-digest"],
        ["check", "--dest", "x.gguf"],
        ["hf", "--repo", "a/b", "--file", "f", "--revision", "main", "--dest", "d"],
        ["bogus"],
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
