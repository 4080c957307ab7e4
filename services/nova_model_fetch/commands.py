"""The three subcommands: check, install-file, hf."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .diskspace import ensure_free_space, human
from .errors import BusyError, ChecksumMismatchError, FetchError
from .hashing import looks_like_sha256, sha256_file
from .models import (
    CheckOptions,
    CheckResult,
    HubOptions,
    HubResult,
    InstallFileOptions,
    InstallResult,
)
from .placement import place_file, same_filesystem
from .progress import log
from .stamp import verify_file, write_stamp

CACHE_DIR_NAME = ".download-cache"


def check(opts: CheckOptions) -> CheckResult:
    dest = opts.dest.absolute()
    v = verify_file(dest, opts.sha256)
    return CheckResult(
        present=v.matches,
        path=str(dest),
        sha256=opts.sha256,
        size=v.size,
        actual_sha256=v.actual_sha256,
        rehashed=v.rehashed,
    )


def install_file(opts: InstallFileOptions) -> InstallResult:
    source, dest = opts.source.absolute(), opts.dest.absolute()
    if source == dest:
        raise FetchError(f"--source and --dest are the same file: {dest}")
    v = verify_file(dest, opts.sha256)
    if v.matches:
        if not opts.keep_source:
            source.unlink(missing_ok=True)
        return InstallResult(
            changed=False, path=str(dest), sha256=opts.sha256, size=v.size, source=str(source)
        )
    if not source.is_file():
        raise FetchError(f"staged file {source} does not exist (and {dest} is not in place)")
    dest.parent.mkdir(parents=True, exist_ok=True)

    actual = sha256_file(source)
    if actual != opts.sha256:
        if not opts.keep_source:
            source.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            what=str(source),
            expected=opts.sha256,
            actual=actual,
            outcome=(
                f"{'kept' if opts.keep_source else 'deleted'} the staged file,"
                f" {dest} left unchanged"
            ),
        )
    size = source.stat().st_size
    if opts.keep_source or not same_filesystem(source, dest.parent):
        ensure_free_space(dest.parent, needed=size, reserve=opts.reserve_bytes, what="the copy")
    place_file(source, dest, keep_source=opts.keep_source, mode=opts.mode)
    write_stamp(dest, opts.sha256)
    return InstallResult(
        changed=True, path=str(dest), sha256=opts.sha256, size=size, source=str(source)
    )


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise BusyError(f"another nova-model-fetch holds {lock_path}") from e
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def fetch_from_hub(opts: HubOptions) -> HubResult:
    dest = opts.dest.absolute()
    base = {
        "path": str(dest),
        "sha256": opts.sha256,
        "repo": opts.repo,
        "file": opts.file,
        "revision": opts.revision,
    }
    v = verify_file(dest, opts.sha256)
    if v.matches:  # nothing to do, no network
        return HubResult(changed=False, size=v.size, **base)

    from . import hub  # imports huggingface_hub: after configure_environment()

    dest.parent.mkdir(parents=True, exist_ok=True)
    cache_dir = (opts.cache_dir or dest.parent / CACHE_DIR_NAME).absolute()
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = cache_dir / f"{opts.sha256}.incomplete"
    what = f"{opts.repo}/{opts.file}@{opts.revision}"

    with _exclusive(cache_dir / f"{opts.sha256}.lock"):
        remote = hub.resolve(
            repo=opts.repo,
            filename=opts.file,
            revision=opts.revision,
            retries=opts.retries,
            wait=opts.retry_wait,
        )
        if looks_like_sha256(remote.etag) and remote.etag.lower() != opts.sha256:  # type: ignore[union-attr]
            raise FetchError(
                f"the Hub reports sha256 {remote.etag} for {what}, expected {opts.sha256};"
                f" not downloading (check the pinned revision and sha256); {dest} left unchanged"
            )
        have = hub.partial_size(partial)
        if remote.size is not None and have > remote.size:
            partial.unlink()
            have = 0
        if remote.size is None:
            log(f"warning: the Hub did not report the size of {what}; free space not checked")
        else:
            ensure_free_space(
                cache_dir,
                needed=remote.size - have,
                reserve=opts.reserve_bytes,
                what=f"downloading {what} ({remote.size} bytes, {have} already downloaded)",
            )
            if not same_filesystem(cache_dir, dest.parent):
                ensure_free_space(
                    dest.parent,
                    needed=remote.size,
                    reserve=opts.reserve_bytes,
                    what=f"copying {what} from {cache_dir}",
                )
            log(
                f"downloading {what} ({human(remote.size)}) to {dest}"
                + (f", resuming at byte {have}" if have else "")
            )
        hub.download(remote, partial, retries=opts.retries, wait=opts.retry_wait)

        actual = sha256_file(partial)
        if actual != opts.sha256:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                what=what,
                expected=opts.sha256,
                actual=actual,
                outcome=f"deleted the download, {dest} left unchanged",
            )
        size = partial.stat().st_size
        place_file(partial, dest, keep_source=False, mode=opts.mode)
        write_stamp(dest, opts.sha256)
    with contextlib.suppress(OSError):
        cache_dir.rmdir()  # only if empty
    log(f"installed {dest} ({human(size)}, sha256 {opts.sha256})")
    return HubResult(changed=True, size=size, commit=remote.commit, resumed_from=have, **base)
