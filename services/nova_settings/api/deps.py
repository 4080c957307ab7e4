"""FastAPI dependencies: config, DB session, current user, HTTP clients.

Shaped like the official full-stack FastAPI template: ``SessionDep`` and ``CurrentUser`` are
``Annotated`` aliases that routes take as parameters.
"""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import Depends, HTTPException, Request, status

from ..core import security
from ..core.config import Config
from ..core.db import Database
from ..fast_read import AuthenticatedUser, bearer_token
from .middleware import USER_STATE_KEY

UNAUTHORIZED = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="Not authenticated",
    headers={"WWW-Authenticate": "Bearer"},
)


async def get_config(request: Request) -> Config:
    return request.app.state.config


ConfigDep = Annotated[Config, Depends(get_config)]


async def get_session(request: Request) -> Database:
    """The request's database connection, checked out of the pool on first use.

    The connection belongs to the request: DbScopeMiddleware gives every request its own
    connection scope and returns the connection to the pool when the request ends. (A yield
    dependency would do the same but costs more than the query it serves on the hot path.)
    Threadpool work started by the request runs in a copy of its context and so uses the same
    connection.
    """
    db: Database = request.app.state.db
    if db.is_closed():
        db.connect()
    return db


SessionDep = Annotated[Database, Depends(get_session)]


async def get_current_user(request: Request) -> AuthenticatedUser:
    """The user the bearer token names, with their settings row; 401 (saying nothing more)
    otherwise.

    Every authenticated request comes through here, so it is one dependency node served by
    fast_read (header straight from the scope, the user from UserLookup's commit-checked
    cache or one indexed query); api/main.py declares the bearer scheme in the OpenAPI
    document instead of fastapi.security.HTTPBearer.
    """
    token = bearer_token(request.scope)
    if token is None:
        raise UNAUTHORIZED
    user = request.app.state.user_lookup.user_for_token(token)
    if user is None:
        raise UNAUTHORIZED
    # For the access log (the same dict as request.state, without building a State object).
    request.scope.setdefault("state", {})[USER_STATE_KEY] = user.name
    return user


CurrentUser = Annotated[AuthenticatedUser, Depends(get_current_user)]

FORBIDDEN_NOT_ADMIN = "only an admin may do this (your role: user)"


async def get_current_admin(user: CurrentUser) -> AuthenticatedUser:
    """The caller, who must be an admin: 403 (and nothing changes) otherwise."""
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=FORBIDDEN_NOT_ADMIN)
    return user


AdminUser = Annotated[AuthenticatedUser, Depends(get_current_admin)]


async def require_gateway(request: Request) -> None:
    """The gateway itself (it reports usage): the bearer must be the gateway master key."""
    config: Config = request.app.state.config
    token = bearer_token(request.scope)
    master = config.gateway_master_key()
    if token is None or master is None or not security.secrets_match(token, master):
        raise UNAUTHORIZED


GatewayCaller = Depends(require_gateway)


async def get_local_client(request: Request) -> httpx.AsyncClient:
    """For llama-server and the gateway on this host (no proxies from the environment)."""
    return request.app.state.local_client


async def get_provider_client(request: Request) -> httpx.AsyncClient:
    """For provider APIs on the internet (honours HTTPS_PROXY and friends)."""
    return request.app.state.provider_client


LocalClientDep = Annotated[httpx.AsyncClient, Depends(get_local_client)]
ProviderClientDep = Annotated[httpx.AsyncClient, Depends(get_provider_client)]
