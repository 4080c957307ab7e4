"""The consecutive-failure counters, one per target, in a small JSON file (atomic writes)."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from nova_common.files import write_atomic


class TargetState(BaseModel):
    failures: int = 0
    last_error: str | None = None
    last_ok: float | None = None
    last_failure: float | None = None
    restarts: int = 0
    last_restart: float | None = None
    progress: float | None = None  # llama-server's token counters at the last probe


class State(BaseModel):
    version: int = 1
    targets: dict[str, TargetState] = Field(default_factory=dict)

    def target(self, name: str) -> TargetState:
        return self.targets.setdefault(name, TargetState())


def load(path: Path) -> tuple[State, str | None]:
    """The state, and a warning when the file was unreadable or corrupt (then a fresh state)."""
    try:
        return State.model_validate_json(path.read_bytes()), None
    except FileNotFoundError:
        return State(), None
    except (OSError, ValidationError, ValueError) as exc:
        return State(), f"state file {path} unusable, starting afresh: {exc.__class__.__name__}"


def save(path: Path, state: State) -> None:
    """Atomically, 0644: nova-settings exports the counters for Prometheus (no secrets here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(state.model_dump(), indent=2) + "\n", mode=0o644)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[bool]:
    """An exclusive lock beside the state file; yields False when another run holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
