"""Download one file from the Hugging Face Hub with huggingface_hub's HTTP primitives.

Why not ``hf_hub_download``: in the pinned huggingface_hub (1.33) it downloads to a
process-unique ``<etag>.<random>.incomplete`` file and deletes it on failure, so an interrupted
run starts from zero. We use the same library calls it uses (``hf_hub_url``,
``get_hf_file_metadata``, ``build_hf_headers``, ``http_get``) with our own stable partial file
``<cache-dir>/<sha256>.incomplete``, which a later run resumes with a ``Range`` request.
``HF_ENDPOINT`` and ``HF_TOKEN`` are honoured by the library (the token is sent as
``Authorization: Bearer`` and never logged). Xet is not used: plain HTTP only.

Import this module only after ``configure_environment()`` has run (the library reads its
environment at import time).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import build_hf_headers

from .errors import FetchError
from .progress import ProgressFile, log

# http_get buffers DOWNLOAD_CHUNK_SIZE bytes (10 MiB by default) before writing them; smaller
# chunks lose less on a dropped connection and make resuming finer-grained.
CHUNK_SIZE = 1024 * 1024
constants.DOWNLOAD_CHUNK_SIZE = CHUNK_SIZE

_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_FATAL_ERRNO = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})

T = TypeVar("T")


@dataclass(frozen=True)
class RemoteFile:
    url: str
    download_url: str
    size: int | None
    etag: str | None
    commit: str | None
    headers: dict[str, str]


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, HfHubHTTPError):  # also an OSError: check first
        response = getattr(error, "response", None)
        return response is not None and response.status_code in _RETRY_STATUS
    if isinstance(error, httpx.TransportError):
        return True
    if isinstance(error, OSError):
        return error.errno not in _FATAL_ERRNO
    return False


def with_retries(
    action: Callable[[], T], *, retries: int, wait: float, what: str, token: str | None
) -> T:
    for attempt in range(retries + 1):
        try:
            return action()
        except Exception as e:
            if attempt >= retries or not is_retryable(e):
                raise
            delay = min(wait * 2**attempt, 30.0)
            log(
                f"{what} failed (attempt {attempt + 1} of {retries + 1}):"
                f" {one_line(e, token)}; retrying in {delay:g}s"
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


def one_line(error: BaseException, token: str | None = None) -> str:
    text = " ".join(str(error).split()) or repr(error)
    if token:
        text = text.replace(token, "***")
    return f"{type(error).__name__}: {text}"


def current_token() -> str | None:
    """The token the library will send (for redacting only; never printed)."""
    auth = build_hf_headers().get("authorization", "")
    return auth.removeprefix("Bearer ") or None


def resolve(*, repo: str, filename: str, revision: str, retries: int, wait: float) -> RemoteFile:
    """HEAD the file on the Hub: size, etag (the sha256 for LFS files), commit, where to GET."""
    url = hf_hub_url(repo, filename, revision=revision)
    headers = build_hf_headers()
    token = current_token()
    metadata = with_retries(
        lambda: get_hf_file_metadata(url),
        retries=retries,
        wait=wait,
        what="metadata request",
        token=token,
    )
    download_url = url
    if metadata.xet_file_data is None and metadata.location and metadata.location != url:
        # LFS files redirect to a CDN with a signed URL: GET it directly, without the token
        # unless it stays on the Hub's own host (same rule as hf_hub_download).
        download_url = metadata.location
        if urlsplit(download_url).hostname != urlsplit(url).hostname:
            headers.pop("authorization", None)
    return RemoteFile(
        url=url,
        download_url=download_url,
        size=metadata.size,
        etag=metadata.etag,
        commit=metadata.commit_hash,
        headers=headers,
    )


def partial_size(partial: Path) -> int:
    try:
        return partial.stat().st_size
    except FileNotFoundError:
        return 0


def download(remote: RemoteFile, partial: Path, *, retries: int, wait: float) -> None:
    """Fetch ``remote`` into ``partial``, resuming from what is already there."""
    token = current_token()

    def attempt() -> None:
        have = partial_size(partial)
        if remote.size is not None and have > remote.size:
            log(f"discarding {partial}: larger than the remote file")
            partial.unlink()
            have = 0
        if remote.size is not None and have == remote.size:
            return
        if have:
            log(f"resuming at byte {have}")
        fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as f:
            f.seek(0, os.SEEK_END)
            sink = ProgressFile(f, total=remote.size, initial=have)
            http_get(
                remote.download_url,
                sink,  # type: ignore[arg-type]
                resume_size=have,
                headers=dict(remote.headers),
                expected_size=remote.size,
            )
            f.flush()
            os.fsync(f.fileno())

    with_retries(attempt, retries=retries, wait=wait, what="download", token=token)
    if remote.size is not None and partial_size(partial) != remote.size:
        raise FetchError(
            f"download of {remote.url} ended with {partial_size(partial)} bytes,"
            f" expected {remote.size}"
        )
