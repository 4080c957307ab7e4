"""nova_common.files: a reader sees the old file or the new one, with its mode from the start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nova_common import files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("wanted", [0o600, 0o644, 0o640])
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
def test_new_file_has_the_mode_whatever_the_umask(tmp_path, wanted, umask):
    old = os.umask(umask)
    try:
        files.write_atomic(tmp_path / "f", "data\n", mode=wanted)
    finally:
        os.umask(old)
    assert (tmp_path / "f").read_text() == "data\n"
    assert mode(tmp_path / "f") == wanted


def test_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    files.write_atomic(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_before_the_rename_the_temporary_file_is_complete_fsynced_and_has_its_mode(
    tmp_path, monkeypatch
):
    target = tmp_path / "f"
    target.write_text("old")
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent == tmp_path  # same directory, so the rename is atomic
        assert src.read_text() == "new" and mode(src) == 0o640
        assert target.read_text() == "old"  # the old file is intact until the rename
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files.write_atomic(target, "new", mode=0o640)
    assert events == ["fsync-file", "replace", "fsync-dir"]
    assert target.read_text() == "new"


def test_the_mode_is_set_before_any_data_is_written(tmp_path):
    with files.atomic_writer(tmp_path / "secret", mode=0o600) as stream:
        (tmp,) = [p for p in tmp_path.iterdir() if p.name != "secret"]
        assert mode(tmp) == 0o600
        stream.write(b"key")
    assert not (tmp_path / tmp.name).exists()


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_writer(target, mode=0o644) as stream:
        stream.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_failed_rename_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    target = tmp_path / "f"
    target.write_text("old")

    def replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        files.write_atomic(target, "new", mode=0o644)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_symlink_planted_at_a_temporary_name_is_not_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: "fixed")
    (tmp_path / ".f.fixed.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        files.write_atomic(tmp_path / "f", "new", mode=0o600)
    assert victim.read_text() == "untouched"


def test_move_into_place_sets_the_mode_and_replaces(tmp_path):
    source, dest = tmp_path / "download.partial", tmp_path / "model.gguf"
    source.write_bytes(b"weights")
    source.chmod(0o600)
    dest.write_bytes(b"old weights")
    files.move_into_place(source, dest, mode=0o644)
    assert dest.read_bytes() == b"weights" and mode(dest) == 0o644
    assert not source.exists()
