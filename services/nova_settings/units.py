"""State of the nova-* systemd units, from ``systemctl show`` (no privileges needed)."""

from __future__ import annotations

import shutil
import subprocess

from .schemas import UnitState

PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "NRestarts", "UnitFileState")
TIMEOUT_S = 5.0


def _unknown(units: tuple[str, ...], reason: str) -> list[UnitState]:
    return [
        UnitState(
            unit=unit,
            active_state="unknown",
            sub_state="unknown",
            unit_file_state="unknown",
            reason=reason,
        )
        for unit in units
    ]


def _parse_blocks(output: str) -> list[dict[str, str]]:
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


def unit_states(units: tuple[str, ...]) -> list[UnitState]:
    """Blocking (runs systemctl); run it in a worker thread."""
    if not units:
        return []
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return _unknown(units, "systemctl not found on this host")
    try:
        result = subprocess.run(
            [systemctl, "show", "--no-pager", "-p", ",".join(PROPERTIES), "--", *units],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _unknown(units, f"systemctl did not answer within {TIMEOUT_S:g} s")
    except OSError as exc:
        return _unknown(units, f"systemctl could not run: {exc.strerror}")
    blocks = _parse_blocks(result.stdout)
    if result.returncode != 0 or len(blocks) != len(units):
        first = (result.stderr.strip().splitlines() or ["no output"])[0][:200]
        return _unknown(units, f"systemctl show failed (exit {result.returncode}): {first}")
    states = []
    for unit, props in zip(units, blocks, strict=True):
        restarts = props.get("NRestarts", "")
        load_state = props.get("LoadState", "")
        states.append(
            UnitState(
                unit=unit,
                active_state=props.get("ActiveState") or "unknown",
                sub_state=props.get("SubState") or "unknown",
                unit_file_state=props.get("UnitFileState") or "unknown",
                n_restarts=int(restarts) if restarts.isdigit() else None,
                reason="unit not found" if load_state == "not-found" else None,
            )
        )
    return states
