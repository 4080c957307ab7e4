"""One watchdog run: for each target whose unit is active, probe; count; restart after N."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nova_common import systemd
from nova_common.journal import ERR, INFO, NOTICE, WARNING, log

from . import probes
from .state import State, TargetState

SYSTEMCTL_TIMEOUT_S = 10.0
RESTART_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Target:
    name: str
    unit: str
    probe: Callable[[TargetState], probes.ProbeResult]


def active_state(systemctl: str, unit: str) -> str | None:
    """ActiveState of UNIT ("active", "activating", "failed", ...), or None when unknown."""
    out = systemd.show_value(unit, "ActiveState", systemctl=systemctl, timeout=SYSTEMCTL_TIMEOUT_S)
    value = out.stdout.strip()
    return value if out.ok and value else None


def restart(command: Sequence[str], unit: str) -> tuple[bool, str]:
    try:
        result = subprocess.run(
            [*command, unit], capture_output=True, text=True, timeout=RESTART_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return False, f"no answer within {RESTART_TIMEOUT_S:g} s"
    except OSError as exc:
        return False, f"cannot run {command[0]}: {exc.strerror}"
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["no output"])[0][:200]
        return False, f"exit {result.returncode}: {first}"
    return True, "ok"


@dataclass(frozen=True)
class Policy:
    threshold: int
    systemctl: str
    restart_command: tuple[str, ...]
    verbose: bool = False

    @classmethod
    def from_text(
        cls, threshold: int, systemctl: str, restart_command: str, verbose: bool
    ) -> Policy:
        return cls(threshold, systemctl, tuple(shlex.split(restart_command)), verbose)


def check_target(target: Target, policy: Policy, state: State) -> None:
    ts = state.target(target.name)
    now = time.time()
    unit_state = active_state(policy.systemctl, target.unit)
    if unit_state != "active":
        # Stopped on purpose, failed (systemd's own restart logic applies), starting or unknown:
        # not ours to judge. Start counting afresh once it is active again.
        if ts.failures:
            log(INFO, f"{target.unit} is {unit_state or 'of unknown state'}: counter reset")
        elif policy.verbose:
            log(INFO, f"{target.unit} is {unit_state or 'of unknown state'}: not probed")
        ts.failures, ts.progress = 0, None
        return

    result = target.probe(ts)
    ts.progress = result.progress if result.progress is not None else ts.progress
    if result.ok or result.busy:
        if ts.failures:
            log(NOTICE, f"{target.unit} answers again after {ts.failures} failed probe(s)")
        elif result.busy:
            log(NOTICE, f"{target.unit} is busy, not stuck: {result.detail}")
        elif policy.verbose:
            log(INFO, f"{target.unit} ok: {result.detail}")
        ts.failures, ts.last_ok = 0, now
        return

    ts.failures += 1
    ts.last_error, ts.last_failure = result.detail, now
    if ts.failures < policy.threshold:
        log(
            WARNING,
            f"{target.unit} probe failed ({ts.failures}/{policy.threshold}): {result.detail}",
        )
        return

    command = shlex.join([*policy.restart_command, target.unit])
    log(
        ERR,
        f"{target.unit} failed {ts.failures} probes in a row (last: {result.detail}); "
        f"restarting it: {command}",
    )
    ok, detail = restart(policy.restart_command, target.unit)
    if not ok:
        log(ERR, f"restart of {target.unit} failed: {detail}")
    ts.failures, ts.progress = 0, None
    ts.restarts += 1
    ts.last_restart = now


def run_once(targets: Sequence[Target], policy: Policy, state: State) -> None:
    for target in targets:
        check_target(target, policy, state)
