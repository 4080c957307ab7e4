"""POST / DELETE /api/gateway-key: the caller's own key for the gateway.

The key is returned once (only its sha256 is stored); the gateway admits it, applies the
user's settings and records their usage. Creating a key replaces the previous one; both
changes reach the gateway before the call answers (gateway/identity.py).
"""

from __future__ import annotations

from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from ... import crud
from ...gateway import identity
from ...schemas import GatewayKeyOut, GatewayKeyRevoked
from ..deps import ConfigDep, CurrentUser, SessionDep

router = APIRouter(prefix="/api/gateway-key", tags=["gateway key"])


def _create(session: SessionDep, config: ConfigDep, user_id: int) -> str:
    key = crud.set_gateway_key(session, user_id)
    identity.publish(session, config)
    return key


def _revoke(session: SessionDep, config: ConfigDep, user_id: int) -> bool:
    revoked = crud.revoke_gateway_key(session, user_id)
    if revoked:
        identity.publish(session, config)
    return revoked


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_gateway_key(
    user: CurrentUser, session: SessionDep, config: ConfigDep
) -> GatewayKeyOut:
    key = await run_in_threadpool(_create, session, config, user.id)
    return GatewayKeyOut(key=key, user=user.name, gateway_url=f"{config.gateway_url}/v1")


@router.delete("")
async def revoke_gateway_key(
    user: CurrentUser, session: SessionDep, config: ConfigDep
) -> GatewayKeyRevoked:
    return GatewayKeyRevoked(revoked=await run_in_threadpool(_revoke, session, config, user.id))
