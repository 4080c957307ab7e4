"""GET / PUT / PATCH /api/user-settings/."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from ... import crud, discovery
from ...core.config import Config
from ...fast_read import settings_json
from ...gateway import identity, litellm_config
from ...schemas import ErrorDetail, SettingsOut, SettingsPatch, SettingsPut
from ..deps import ConfigDep, CurrentUser, LocalClientDep, SessionDep, get_session

router = APIRouter(prefix="/api/user-settings", tags=["settings"])


# A change of llm_model or llm_max_tokens is checked against the gateway's models.
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorDetail, "description": "the gateway cannot be asked which models exist"},
}


@router.get("/", response_model=SettingsOut)
async def read_settings(user: CurrentUser, request: Request) -> Response:
    # The hottest route (the chat agent calls it before every LLM call; see fast_read.py).
    # CurrentUser already brought the settings row, so a read costs no further query and no
    # further dependency nodes (FastAPI resolves each for more than the query costs): config
    # comes from the app state, and a pooled connection is taken only to seed a missing row.
    config: Config = request.app.state.config
    if user.settings is None:  # a user created without settings: seed the defaults
        session = await get_session(request)
        seeded = await run_in_threadpool(crud.seed_settings, session, user.id, config)
        body = seeded.model_dump_json().encode()
    else:
        saved = user.settings.llm_model or config.local_model
        reason = litellm_config.unavailable_reason(config, saved)
        body = settings_json(user.settings, config.local_model, reason)
    # Already a validated SettingsOut body: sent as is instead of being validated again.
    return Response(body, media_type="application/json")


async def apply_changes(
    user: CurrentUser,
    session: SessionDep,
    config: ConfigDep,
    client: LocalClientDep,
    changes: dict[str, Any],
) -> SettingsOut:
    catalog = None
    if "llm_model" in changes or "llm_max_tokens" in changes:
        catalog = await discovery.discover(client, config)
        if not catalog.gateway.reachable:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail=f"cannot check llm_model/llm_max_tokens: {catalog.gateway.error}",
            )
    try:
        out = await run_in_threadpool(
            crud.apply_changes, session, user.id, changes, catalog, config
        )
    except crud.SettingsRefused as refused:
        raise HTTPException(
            refused.status_code,
            detail=[
                {"loc": ["body", refused.field], "msg": refused.message, "type": "value_error"}
            ],
        ) from None
    # The gateway applies the new settings from the user's next request on.
    await run_in_threadpool(identity.publish, session, config)
    reason = litellm_config.unavailable_reason(config, out.llm_model)
    return out.model_copy(
        update={"llm_model_available": reason is None, "llm_model_unavailable_reason": reason}
    )


@router.put("/", responses=WRITE_RESPONSES)
async def replace_settings(
    body: SettingsPut,
    user: CurrentUser,
    session: SessionDep,
    config: ConfigDep,
    client: LocalClientDep,
) -> SettingsOut:
    return await apply_changes(user, session, config, client, body.model_dump())


@router.patch("/", responses=WRITE_RESPONSES)
async def update_settings(
    body: SettingsPatch,
    user: CurrentUser,
    session: SessionDep,
    config: ConfigDep,
    client: LocalClientDep,
) -> SettingsOut:
    return await apply_changes(user, session, config, client, body.changes())
