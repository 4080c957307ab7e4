"""State of the nova-* systemd units, from ``systemctl show`` (no privileges needed)."""

from __future__ import annotations

from nova_common import systemd

from .schemas import UnitState

PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "NRestarts", "UnitFileState")


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


def unit_states(units: tuple[str, ...]) -> list[UnitState]:
    """Blocking (runs systemctl); run it in a worker thread."""
    if not units:
        return []
    shown = systemd.show(units, PROPERTIES)
    if not shown.ok:
        return _unknown(units, shown.error)
    states = []
    for unit, props in zip(units, shown.units, strict=True):
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
