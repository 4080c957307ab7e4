"""Fixtures for the ops tools: stand-in servers, fake systemctl/journalctl, temp host dirs."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from .standin import Standin

FAKE_SYSTEMCTL = """#!/bin/sh
# fake systemctl: show -p ... -- UNIT -> UNIT.show; show -P PROP -- UNIT -> UNIT.PROP;
# cat -- UNIT -> UNIT.unit; anything missing -> exit 1.
dir='{dir}'
for last; do :; done
case "$1" in
  cat) f="$dir/$last.unit" ;;
  show)
    prop=""; prev=""
    for a; do [ "$prev" = "-P" ] && prop="$a"; prev="$a"; done
    if [ -n "$prop" ]; then f="$dir/$last.$prop"; else f="$dir/$last.show"; fi ;;
  *) exit 1 ;;
esac
if [ -f "$f" ]; then cat "$f"; else echo "Unit $last could not be found." >&2; exit 1; fi
"""

FAKE_JOURNALCTL = """#!/bin/sh
# fake journalctl: -u UNIT -p err -> UNIT.err; -u UNIT -> UNIT.journal.
dir='{dir}'
unit=""; prio=""; prev=""
for a; do
  [ "$prev" = "-u" ] && unit="$a"
  [ "$prev" = "-p" ] && prio="$a"
  prev="$a"
done
if [ -n "$prio" ]; then f="$dir/$unit.err"; else f="$dir/$unit.journal"; fi
if [ -f "$f" ]; then cat "$f"; else echo "-- No entries --"; fi
"""

RECORDER = """#!/bin/sh
echo "$@" >> '{log}'
"""


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


class FakeSystemd:
    """Per-unit files read by the fake systemctl and journalctl scripts."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "systemd"
        self.dir.mkdir()
        self.systemctl = write_script(base / "systemctl", FAKE_SYSTEMCTL.format(dir=self.dir))
        self.journalctl = write_script(base / "journalctl", FAKE_JOURNALCTL.format(dir=self.dir))

    def unit(
        self,
        unit: str,
        active: str = "active",
        sub: str = "running",
        result: str = "success",
        restarts: int = 0,
    ) -> None:
        (self.dir / f"{unit}.show").write_text(
            f"LoadState=loaded\nActiveState={active}\nSubState={sub}\nResult={result}\n"
            f"NRestarts={restarts}\nStateChangeTimestamp=Tue 2025-06-03 02:00:00 UTC\n"
        )
        (self.dir / f"{unit}.ActiveState").write_text(active + "\n")

    def set(self, unit: str, suffix: str, text: str) -> None:
        (self.dir / f"{unit}.{suffix}").write_text(text)


@pytest.fixture
def fake_systemd(tmp_path: Path) -> FakeSystemd:
    return FakeSystemd(tmp_path)


@pytest.fixture
def standins() -> Iterator[list[Standin]]:
    """Collects stand-ins created in a test and closes them afterwards."""
    started: list[Standin] = []
    yield started
    for s in started:
        s.close()


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "restarts.log"
    return write_script(tmp_path / "restart-recorder", RECORDER.format(log=log)), log
