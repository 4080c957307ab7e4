"""Usage through the gateway: ``GET /api/usage`` for people, ``POST /internal/usage`` for the
gateway, which reports batches of per-(user, day, model) counts off its request path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from starlette.concurrency import run_in_threadpool

from nova_common.gateway_identity import OPERATOR_USER_ID

from ... import crud
from ...gateway import identity
from ...models import User
from ...schemas import ErrorDetail, UsageBatchIn, UsageOut, UsageRow
from ..deps import FORBIDDEN_NOT_ADMIN, ConfigDep, CurrentUser, GatewayCaller, SessionDep

router = APIRouter(tags=["usage"])

OPERATOR_NAME = "(master key)"


@router.get(
    "/api/usage",
    responses={
        403: {"model": ErrorDetail, "description": "another user's usage, asked by a non-admin"},
        404: {"model": ErrorDetail, "description": "no such user"},
    },
)
def read_usage(
    user: CurrentUser,
    session: SessionDep,
    who: Annotated[
        str | None,
        Query(
            alias="user",
            pattern=r"^[A-Za-z0-9*()][A-Za-z0-9_.\- ()]{0,63}$",
            description="a user's name, or `*` for everyone (admins only); default: you",
        ),
    ] = None,
    days: Annotated[int, Query(ge=1, le=366, description="today and the days before")] = 7,
) -> UsageOut:
    del session
    since = (datetime.now(UTC) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    target: int | None = user.id
    if who is not None and who != user.name:
        if not user.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=FORBIDDEN_NOT_ADMIN)
        if who == "*":
            target = None
        elif who == OPERATOR_NAME:
            target = OPERATOR_USER_ID
        else:
            found = crud.user_by_name(who)
            if found is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user named {who!r}")
            target = found.id
    names = {u.id: u.name for u in User.select(User.id, User.name)}
    names[OPERATOR_USER_ID] = OPERATOR_NAME
    rows = [
        UsageRow(
            user=names.get(r.user_id, f"(deleted user {r.user_id})"),
            day=r.day,
            model=r.model,
            requests=r.requests,
            errors=r.errors,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            total_tokens=r.prompt_tokens + r.completion_tokens,
            cost=r.cost,
        )
        for r in crud.usage_rows(target, since)
    ]
    return UsageOut(
        since=since,
        rows=rows,
        total_tokens=sum(r.total_tokens for r in rows),
        requests=sum(r.requests for r in rows),
        cost=sum(r.cost for r in rows),
    )


def _record(session: SessionDep, config: ConfigDep, batch: UsageBatchIn) -> None:
    crud.record_usage(session, [r.model_dump() for r in batch.records])
    identity.publish_if_budgets_changed(session, config)


@router.post(
    "/internal/usage",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[GatewayCaller],
    include_in_schema=False,
)
async def record_usage(batch: UsageBatchIn, session: SessionDep, config: ConfigDep) -> Response:
    await run_in_threadpool(_record, session, config, batch)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
