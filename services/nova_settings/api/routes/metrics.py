"""GET /metrics: Prometheus' scrape (nova_settings/metrics.py), for the metrics token only."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from ...core import security
from ...fast_read import bearer_token
from ...metrics import REGISTRY
from ..deps import UNAUTHORIZED

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    expected = request.app.state.config.metrics_token()
    if expected is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="metrics are off: no metrics token")
    presented = bearer_token(request.scope)
    if presented is None or not security.secrets_match(presented, expected):
        raise UNAUTHORIZED
    body = await run_in_threadpool(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
