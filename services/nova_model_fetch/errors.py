"""Errors that end the command with a one-line message and exit code 1."""

from __future__ import annotations


class FetchError(Exception):
    """A failure the operator can act on; its message is printed as one line."""


class ChecksumMismatchError(FetchError):
    """The file's sha256 is not the pinned one."""

    def __init__(self, *, what: str, expected: str, actual: str, outcome: str) -> None:
        super().__init__(
            f"sha256 mismatch for {what}: expected {expected}, got {actual}; {outcome}"
        )
        self.expected = expected
        self.actual = actual


class InsufficientSpaceError(FetchError):
    """Not enough free disk space for the download or copy."""


class BusyError(FetchError):
    """Another nova-model-fetch is working on the same file."""
