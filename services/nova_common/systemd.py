"""``systemctl show``, read-only: run it, parse ``KEY=VALUE`` blocks, never raise.

Status pages and probes ask systemd about units without privileges. A missing, hanging or
failing ``systemctl`` must give "unknown" with a reason, never an exception, so one parser and
one runner serve every caller (nova-diagnose, nova-watchdog, the settings service).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ToolOutput:
    """What a command printed; ``error`` says in one line why it failed ("" when it did not)."""

    ok: bool
    stdout: str
    error: str


def run_tool(tool: str, args: Sequence[str], timeout: float = TIMEOUT_S) -> ToolOutput:
    """Run ``tool`` (a name on PATH or a path) with ``args``; failures become ``error`` text."""
    path = shutil.which(tool)
    if path is None:
        return ToolOutput(False, "", f"{tool} not found")
    try:
        result = subprocess.run(
            [path, *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ToolOutput(False, "", f"{tool} did not answer within {timeout:g} s")
    except OSError as exc:
        return ToolOutput(False, "", f"{tool} could not run: {exc.strerror}")
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no output"])[0][:160]
        return ToolOutput(False, result.stdout, f"{tool} exit {result.returncode}: {first}")
    return ToolOutput(True, result.stdout, "")


def parse_show(output: str) -> list[dict[str, str]]:
    """``systemctl show -p A,B -- U1 U2`` output: one dict per unit, in the order asked.

    systemd separates the units' blocks by a blank line; a value keeps everything after the
    first ``=``.
    """
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in output.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks


@dataclass(frozen=True)
class ShowResult:
    """The asked properties of each unit (same order as asked), or why there are none."""

    units: tuple[dict[str, str], ...]
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def show(
    units: Sequence[str],
    properties: Sequence[str],
    *,
    systemctl: str = "systemctl",
    timeout: float = TIMEOUT_S,
) -> ShowResult:
    """``systemctl show -p PROPS -- UNITS``; an error when it fails or a block is missing."""
    if not units:
        return ShowResult(())
    out = run_tool(
        systemctl, ["show", "--no-pager", "-p", ",".join(properties), "--", *units], timeout
    )
    if not out.ok:
        return ShowResult((), out.error)
    blocks = parse_show(out.stdout)
    if len(blocks) != len(units):
        return ShowResult((), f"{systemctl} show gave {len(blocks)} blocks for {len(units)} units")
    return ShowResult(tuple(blocks))


def show_value(
    unit: str, prop: str, *, systemctl: str = "systemctl", timeout: float = TIMEOUT_S
) -> ToolOutput:
    """``systemctl show -P PROP -- UNIT``: the bare value in ``stdout`` (trailing newline off)."""
    out = run_tool(systemctl, ["show", "--no-pager", "-P", prop, "--", unit], timeout)
    return ToolOutput(out.ok, out.stdout.rstrip("\n"), out.error)
