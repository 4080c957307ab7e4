"""Unauthenticated liveness routes."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(session: SessionDep) -> dict[str, str]:
    """Cheap: one trivial query on the request's connection (touches no table, takes no lock)."""
    session.execute_sql("SELECT 1").fetchone()
    return {"status": "ok"}


@router.get("/api/ping")
async def ping() -> dict[str, bool]:
    """A constant answer: the baseline the benchmark compares the settings read against."""
    return {"pong": True}
