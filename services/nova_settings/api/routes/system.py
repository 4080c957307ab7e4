"""GET /api/system/status: units, llama-server and gateway health, GPU metrics."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from nova_common.probe import probe_async

from ... import discovery, gpu, units
from ...core.config import Config
from ...schemas import ServiceHealth, SystemStatusOut
from ..deps import ConfigDep, CurrentUser, LocalClientDep

router = APIRouter(tags=["system"])


async def _gateway_health(client: httpx.AsyncClient, config: Config) -> ServiceHealth:
    url = f"{config.gateway_url}/health/liveliness"
    outcome = await probe_async(client, "GET", url, config.discovery_timeout_s)
    if outcome.status is None:
        return ServiceHealth(url=url, healthy=False, detail=f"unreachable: {outcome.error}")
    return ServiceHealth(url=url, healthy=outcome.status == 200, detail=f"HTTP {outcome.status}")


async def _llama_health(client: httpx.AsyncClient, config: Config) -> ServiceHealth:
    state = await discovery.llama_health(client, config)
    return ServiceHealth(
        url=f"{config.llama_url}/health", healthy=state.healthy, detail=state.detail
    )


@router.get("/api/system/status")
async def system_status(
    user: CurrentUser, config: ConfigDep, client: LocalClientDep
) -> SystemStatusOut:
    del user
    unit_list, gpu_state, llama, gateway = await asyncio.gather(
        run_in_threadpool(units.unit_states, config.units),
        run_in_threadpool(gpu.gpu_state),
        _llama_health(client, config),
        _gateway_health(client, config),
    )
    return SystemStatusOut(units=unit_list, llama_server=llama, gateway=gateway, gpu=gpu_state)
