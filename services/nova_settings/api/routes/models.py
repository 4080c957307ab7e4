"""GET /api/models: what the gateway knows and what is usable now.

When the gateway cannot be asked the answer is still 200, with ``gateway.reachable: false``,
the reason in ``gateway.error`` and an empty ``models`` list.
"""

from __future__ import annotations

from fastapi import APIRouter

from ... import discovery
from ...schemas import ModelsOut
from ..deps import ConfigDep, CurrentUser, LocalClientDep

router = APIRouter(tags=["models"])


@router.get("/api/models")
async def list_models(user: CurrentUser, config: ConfigDep, client: LocalClientDep) -> ModelsOut:
    del user
    catalog = await discovery.discover(client, config)
    return catalog.report()
