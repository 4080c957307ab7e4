"""`nova-model-fetch hf` against the Hub stand-in (HF_ENDPOINT points at it)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.standins.huggingface_hub_server import DEFAULT_COMMIT, HubStandin

from .conftest import FILENAME, REPO, Cli, MiB, cli_env, file_sha256, sha256

TOKEN = "hf_StandInTokenDoNotPrint0123456789"


def hf_args(dest: Path, digest: str, *extra: str) -> list[str]:
    return [
        "hf",
        "--repo",
        REPO,
        "--file",
        FILENAME,
        "--revision",
        "main",
        "--sha256",
        digest,
        "--dest",
        str(dest),
        "--retry-wait",
        "0",
        *extra,
    ]


def cache_dir(dest: Path) -> Path:
    return dest.parent / ".download-cache"


def test_download_then_second_run_makes_no_request(
    cli: Cli, hub: HubStandin, dest: Path, payload: bytes
) -> None:
    first = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert first.returncode == 0, first.stderr
    out = first.json
    assert out["changed"] is True
    assert out["path"] == str(dest)
    assert out["sha256"] == hub.sha256
    assert out["size"] == len(payload)
    assert out["commit"] == DEFAULT_COMMIT
    assert file_sha256(dest) == hub.sha256
    assert oct(dest.stat().st_mode & 0o777) == oct(0o644)
    assert Path(f"{dest}.sha256-stamp").is_file()
    assert not cache_dir(dest).exists(), "the download cache is cleaned up"
    assert [r.method for r in hub.requests] == ["HEAD", "GET"]
    assert hub.gets()[0].range is None
    assert "%" in first.stderr, "sparse progress lines on stderr"

    hub.clear_log()
    second = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert second.returncode == 0, second.stderr
    assert second.json["changed"] is False
    assert second.json["present"] is True
    assert hub.requests == []


def test_dropped_connection_is_resumed_with_a_range_request(
    cli: Cli, hub: HubStandin, dest: Path
) -> None:
    hub.drop_after_bytes = 1_500_000  # clean close (FIN) mid-body, once
    result = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert result.returncode == 0, result.stderr
    assert file_sha256(dest) == hub.sha256
    starts = [r.range_start for r in hub.gets()]
    assert starts[0] is None
    assert any(s is not None and s > 0 for s in starts[1:]), starts


def test_reset_connection_is_retried_and_resumed(cli: Cli, hub: HubStandin, dest: Path) -> None:
    hub.reset_after_bytes = 1_500_000  # TCP RST: the library raises, our retry loop resumes
    result = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert result.returncode == 0, result.stderr
    assert "retrying" in result.stderr, result.stderr
    assert file_sha256(dest) == hub.sha256
    assert any((r.range_start or 0) >= MiB for r in hub.gets()), (
        [(r.method, r.range) for r in hub.requests],
        result.stderr,
    )


def test_server_errors_are_retried_up_to_the_limit(cli: Cli, hub: HubStandin, dest: Path) -> None:
    hub.fail_first_gets = 2
    ok = cli(*hf_args(dest, hub.sha256, "--retries", "2"), endpoint=hub.endpoint)
    assert ok.returncode == 0, ok.stderr
    assert file_sha256(dest) == hub.sha256

    other = dest.with_name("other.gguf")
    hub.fail_first_gets = 5
    failed = cli(*hf_args(other, hub.sha256, "--retries", "1"), endpoint=hub.endpoint)
    assert failed.returncode == 1
    assert "503" in failed.stderr
    assert not other.exists()


def test_killed_download_resumes_on_rerun(
    cli: Cli, cli_command: list[str], hub: HubStandin, dest: Path
) -> None:
    hub.bytes_per_second = 1_000_000
    partial = cache_dir(dest) / f"{hub.sha256}.incomplete"
    proc = subprocess.Popen(
        [*cli_command, *hf_args(dest, hub.sha256)],
        env=cli_env(cli.home, hub.endpoint, None),  # type: ignore[attr-defined]
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size >= MiB:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no partial download appeared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    kept = partial.stat().st_size
    assert 0 < kept < hub.size
    assert not dest.exists()

    hub.bytes_per_second = None
    hub.clear_log()
    result = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert result.returncode == 0, result.stderr
    assert result.json["resumed_from"] == kept
    assert hub.gets()[0].range == f"bytes={kept}-"
    assert file_sha256(dest) == hub.sha256
    assert not partial.exists()


def corrupted(payload: bytes) -> bytes:
    i = len(payload) // 2
    return payload[:i] + bytes([payload[i] ^ 0xFF]) + payload[i + 1 :]


def test_checksum_mismatch_leaves_nothing_and_rerun_downloads_again(
    cli: Cli, hub: HubStandin, dest: Path, payload: bytes
) -> None:
    hub.corrupt = True
    result = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert result.returncode == 1
    assert result.stdout == ""
    message = result.stderr.strip().splitlines()[-1]
    assert "sha256 mismatch" in message
    assert hub.sha256 in message
    assert sha256(corrupted(payload)) in message
    assert not dest.exists()
    assert not Path(f"{dest}.sha256-stamp").exists()
    assert list(cache_dir(dest).glob("*.incomplete")) == []

    hub.corrupt = False
    hub.clear_log()
    again = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert again.returncode == 0, again.stderr
    assert hub.gets()[0].range is None, "the bad download was not reused"
    assert file_sha256(dest) == hub.sha256


def test_checksum_mismatch_keeps_the_previous_model(cli: Cli, hub: HubStandin, dest: Path) -> None:
    old = os.urandom(MiB)
    dest.write_bytes(old)
    hub.corrupt = True
    result = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
    assert result.returncode == 1
    assert "sha256 mismatch" in result.stderr
    assert dest.read_bytes() == old


def test_hub_advertising_another_sha256_is_refused_before_download(
    cli: Cli, hub: HubStandin, dest: Path
) -> None:
    wanted = "ab" * 32
    result = cli(*hf_args(dest, wanted), endpoint=hub.endpoint)
    assert result.returncode == 1
    assert f"the Hub reports sha256 {hub.sha256}" in result.stderr
    assert wanted in result.stderr
    assert hub.gets() == []
    assert not dest.exists()


def test_insufficient_disk_space_fails_before_download(
    cli: Cli, hub: HubStandin, dest: Path
) -> None:
    result = cli(*hf_args(dest, hub.sha256, "--reserve-bytes", str(10**18)), endpoint=hub.endpoint)
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert "not enough free disk space" in message
    assert f"needs {hub.size} bytes" in message
    assert "are free" in message
    assert hub.gets() == []
    assert not dest.exists()
    assert list(cache_dir(dest).glob("*.incomplete")) == []


def test_token_is_sent_as_bearer_and_never_printed(cli: Cli, payload: bytes, dest: Path) -> None:
    with HubStandin(
        repo=REPO, filename=FILENAME, content=payload, private=True, token=TOKEN
    ) as hub:
        denied = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint)
        assert denied.returncode == 1
        assert "401" in denied.stderr
        assert not dest.exists()

        hub.clear_log()
        hub.drop_after_bytes = 1_500_000  # the resumed request carries it too
        result = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint, token=TOKEN)
        assert result.returncode == 0, result.stderr
        assert hub.requests
        assert all(r.authorization == f"Bearer {TOKEN}" for r in hub.requests)
        assert TOKEN not in result.stdout + result.stderr + denied.stdout + denied.stderr
        assert file_sha256(dest) == hub.sha256


def test_token_is_not_sent_to_the_cdn_after_an_lfs_redirect(
    cli: Cli, payload: bytes, dest: Path
) -> None:
    with HubStandin(
        repo=REPO,
        filename=FILENAME,
        content=payload,
        private=True,
        token=TOKEN,
        lfs_redirect=True,
    ) as hub:
        result = cli(*hf_args(dest, hub.sha256), endpoint=hub.endpoint, token=TOKEN)
        assert result.returncode == 0, result.stderr
        head, get = hub.requests
        assert (head.method, head.authorization) == ("HEAD", f"Bearer {TOKEN}")
        assert get.path == f"/lfs/{hub.sha256}"
        assert get.authorization is None
        assert file_sha256(dest) == hub.sha256


def test_missing_file_is_a_clear_error(cli: Cli, hub: HubStandin, dest: Path) -> None:
    args = hf_args(dest, hub.sha256)
    args[args.index(FILENAME)] = "missing.gguf"
    result = cli(*args, endpoint=hub.endpoint)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Entry Not Found" in lines[-1]
    assert not dest.exists()
