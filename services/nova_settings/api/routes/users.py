"""Users and roles (admins only): list, add, change role, disable, set a daily token budget."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from starlette.concurrency import run_in_threadpool

from ... import crud
from ...gateway import identity
from ...models import User
from ...schemas import ErrorDetail, UserCreate, UserCreated, UserOut, UserPatch, UsersOut
from ..deps import AdminUser, ConfigDep, SessionDep

router = APIRouter(
    prefix="/api/users",
    tags=["users"],
    responses={
        403: {"model": ErrorDetail, "description": "the caller is not an admin"},
        404: {"model": ErrorDetail, "description": "no such user"},
        409: {
            "model": ErrorDetail,
            "description": "name taken, the last enabled admin, or your own admin role",
        },
    },
)


def user_out(user: User) -> UserOut:
    return UserOut(
        name=user.name,
        role=user.role,
        disabled=bool(user.disabled),
        daily_token_budget=user.daily_token_budget,
        has_gateway_key=user.gateway_key_hash is not None,
        created_at=user.created_at,
    )


def _refused(exc: crud.UserRefused) -> HTTPException:
    return HTTPException(exc.status_code, detail=exc.message)


@router.get("")
def list_users(admin: AdminUser, session: SessionDep) -> UsersOut:
    del admin, session
    return UsersOut(users=[user_out(u) for u in crud.list_users()])


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_user(
    body: UserCreate, admin: AdminUser, session: SessionDep, config: ConfigDep
) -> UserCreated:
    del admin
    try:
        token = await run_in_threadpool(
            crud.create_user, session, body.name, body.role, config.local_model
        )
    except crud.UserRefused as exc:
        raise _refused(exc) from None
    user = await run_in_threadpool(crud.get_user, body.name)
    return UserCreated(**user_out(user).model_dump(), token=token)


def _update(session: SessionDep, config: ConfigDep, name: str, body: UserPatch) -> User:
    changes = body.model_fields_set
    user = crud.update_user(
        session,
        name,
        role=body.role if "role" in changes else None,
        disabled=body.disabled if "disabled" in changes else None,
        budget=body.daily_token_budget,
        set_budget="daily_token_budget" in changes,
    )
    identity.publish(session, config)
    return user


@router.patch("/{name}")
async def change_user(
    name: str, body: UserPatch, admin: AdminUser, session: SessionDep, config: ConfigDep
) -> UserOut:
    # Through the API nobody locks themselves out; another admin (or the host's CLI) can.
    if name == admin.name and (body.role == "user" or body.disabled):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="you cannot take away your own admin role or disable yourself",
        )
    try:
        user = await run_in_threadpool(_update, session, config, name, body)
    except crud.UserRefused as exc:
        raise _refused(exc) from None
    return user_out(user)
