"""The residency's eviction policy (residency.plan_room and acquire's refusals), without
children: slots are put in the states a running residency would reach."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from nova_gpu_sizing.vram import MiB
from nova_model_residency.config import ResidencyConfig
from nova_model_residency.footprint import Budget, Footprint
from nova_model_residency.residency import NotServable, Residency


def config(*names: str, pin: tuple[str, ...] = ()) -> ResidencyConfig:
    return ResidencyConfig(
        port=8081,
        api_key_file=Path("/nonexistent"),
        default_model=names[0],
        models=[
            {
                "name": n,
                "path": f"/m/{n}.gguf",
                "command": ["true"],
                "port": 9000 + i,
                "pin": n in pin,
            }
            for i, n in enumerate(names)
        ],
    )


def residency(budget_mib: int, sizes: dict[str, int], pin: tuple[str, ...] = ()) -> Residency:
    fps = {n: Footprint(s * MiB, s * MiB, None, 4096, f"{s} MiB") for n, s in sizes.items()}
    return Residency(
        config(*sizes, pin=pin),
        Budget(budget_mib * MiB, "cap", "test"),
        fps,
        httpx.AsyncClient(),
        clock=lambda: 0.0,
    )


def loaded(r: Residency, name: str, last_used: float, in_flight: int = 0) -> None:
    slot = r.slots[name]
    slot.state = "loaded"
    slot.last_used = last_used
    slot.in_flight = in_flight


def test_fits_without_eviction() -> None:
    r = residency(1000, {"a": 400, "b": 500})
    loaded(r, "a", 1)
    assert r.plan_room("b") == ([], True)


def test_least_recently_used_goes_first() -> None:
    r = residency(1000, {"a": 400, "b": 400, "c": 400})
    loaded(r, "a", last_used=5)
    loaded(r, "b", last_used=2)
    assert r.plan_room("c") == (["b"], True)


def test_evicts_as_many_as_needed() -> None:
    r = residency(1000, {"a": 300, "b": 300, "c": 300, "big": 900})
    loaded(r, "a", 3)
    loaded(r, "b", 1)
    loaded(r, "c", 2)
    assert r.plan_room("big") == (["b", "c", "a"], True)


def test_pinned_model_is_never_a_victim() -> None:
    r = residency(1000, {"pinned": 400, "b": 400, "c": 400}, pin=("pinned",))
    loaded(r, "pinned", last_used=0)
    loaded(r, "b", last_used=9)
    assert r.plan_room("c") == (["b"], True)


def test_busy_model_is_waited_for_not_stopped() -> None:
    r = residency(1000, {"a": 400, "b": 400, "c": 400})
    loaded(r, "a", last_used=1, in_flight=1)
    loaded(r, "b", last_used=9)
    # b (idle) goes even though a is older; a is busy.
    assert r.plan_room("c") == (["b"], True)
    loaded(r, "b", last_used=9, in_flight=2)
    assert r.plan_room("c") == ([], False)


def test_too_big_with_pins_is_refused_with_the_figures() -> None:
    r = residency(1000, {"pinned": 600, "big": 500}, pin=("pinned",))
    loaded(r, "pinned", 0)
    with pytest.raises(NotServable) as e:
        r.plan_room("big")
    assert e.value.status == 507
    assert "needs 500 MiB" in e.value.message and "pinned" in e.value.message


def test_unknown_model_is_a_404_naming_the_served_ones() -> None:
    r = residency(1000, {"a": 100, "b": 100})
    with pytest.raises(NotServable) as e:
        asyncio.run(r.acquire("nope"))
    assert e.value.status == 404
    assert "served: a, b" in e.value.message


def test_config_refuses_duplicate_names_and_ports() -> None:
    with pytest.raises(ValueError, match="appear twice: a"):
        ResidencyConfig(
            port=8081,
            api_key_file=Path("/k"),
            default_model="a",
            models=[
                {"name": "a", "path": "/a", "command": ["x"], "port": 9000},
                {"name": "a", "path": "/b", "command": ["x"], "port": 9001},
            ],
        )
    with pytest.raises(ValueError, match="its own port"):
        ResidencyConfig(
            port=9000,
            api_key_file=Path("/k"),
            default_model="a",
            models=[{"name": "a", "path": "/a", "command": ["x"], "port": 9000}],
        )
