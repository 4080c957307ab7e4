"""systemctl and journalctl, read-only. A missing or failing tool gives "unknown", never a crash."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from nova_common import systemd
from nova_common.systemd import ToolOutput, run_tool

from .redact import Redactor
from .report import UnitReport

UNIT_PROPERTIES = (
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "StateChangeTimestamp",
)
_ARGV = re.compile(r"argv\[\]=(.*?) ;")


def unit_state(systemctl: str, unit: str) -> UnitReport:
    shown = systemd.show([unit], UNIT_PROPERTIES, systemctl=systemctl)
    if not shown.ok:
        return UnitReport(unit=unit, reason=shown.error)
    (props,) = shown.units
    restarts = props.get("NRestarts", "")
    load_state = props.get("LoadState") or "unknown"
    return UnitReport(
        unit=unit,
        load_state=load_state,
        active_state=props.get("ActiveState") or "unknown",
        sub_state=props.get("SubState") or "unknown",
        result=props.get("Result") or None,
        n_restarts=int(restarts) if restarts.isdigit() else None,
        since=props.get("StateChangeTimestamp") or None,
        reason="unit not installed" if load_state == "not-found" else None,
    )


def _journal(journalctl: str, args: Sequence[str]) -> ToolOutput:
    return run_tool(journalctl, ["--no-pager", "-o", "short-iso", *args])


def _entries(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip() and not line.startswith("-- ")]


def add_journal(journalctl: str, report: UnitReport, redactor: Redactor) -> None:
    """Last error lines (priority err and worse), else the last 2 lines."""
    out = _journal(journalctl, ["-u", report.unit, "-p", "err", "-n", "3"])
    if not out.ok:
        report.journal_kind = "unknown"
        report.journal = [out.error]
        return
    lines = _entries(out.stdout)
    report.journal_kind = "err"
    if not lines:
        out = _journal(journalctl, ["-u", report.unit, "-n", "2"])
        lines = _entries(out.stdout) if out.ok else [out.error]
        report.journal_kind = "last" if lines and out.ok else "none"
    report.journal = [redactor.redact(line) for line in lines]


def journal_excerpt(journalctl: str, unit: str, lines: int = 500) -> str:
    out = _journal(journalctl, ["-u", unit, "-n", str(lines)])
    return out.stdout if out.ok else f"({out.error})\n{out.stdout}"


def unit_file(systemctl: str, unit: str) -> str:
    out = run_tool(systemctl, ["cat", "--no-pager", "--", unit])
    return out.stdout if out.ok else f"({out.error})\n"


@dataclass(frozen=True)
class ExecStart:
    argv: tuple[str, ...]
    error: str = ""

    def flag(self, *names: str) -> str | None:
        for i, arg in enumerate(self.argv):
            for name in names:
                if arg == name and i + 1 < len(self.argv):
                    return self.argv[i + 1]
                if arg.startswith(name + "="):
                    return arg.split("=", 1)[1]
        return None


def exec_start(systemctl: str, unit: str) -> ExecStart:
    """The main command line, from ``systemctl show -P ExecStart`` ({ path=... ; argv[]=... ; })."""
    out = systemd.show_value(unit, "ExecStart", systemctl=systemctl)
    if not out.ok:
        return ExecStart((), out.error)
    match = _ARGV.search(out.stdout)
    if match is None:
        return ExecStart(
            (), "no ExecStart" if not out.stdout.strip() else "ExecStart not understood"
        )
    return ExecStart(tuple(match.group(1).split()))
