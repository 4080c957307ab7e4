"""Provider API keys: validate (and store), list masked, delete.

Status codes of ``POST /api/user-settings/validate-api-key``:

Storing (``store: true``) and deleting keys is for admins: anyone else gets 403 and nothing
is stored, replaced or removed. Anyone may validate a key without storing it.

* 200 with ``status: "valid"`` or ``status: "rejected"`` - the provider gave an answer;
* 502 with ``status: "unreachable"`` - connection error, 5xx or an answer that says nothing
  about the key; 504 with ``status: "unreachable"`` - the provider did not answer in time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ... import providers
from ...core.config import PROVIDERS, Provider
from ...gateway import identity, key_events, keystore
from ...metrics import KEY_VALIDATIONS
from ...schemas import ApiKeysOut, ErrorDetail, StoredKey, ValidateKeyIn, ValidateKeyOut
from ..deps import (
    FORBIDDEN_NOT_ADMIN,
    AdminUser,
    ConfigDep,
    CurrentUser,
    ProviderClientDep,
    SessionDep,
)

router = APIRouter(tags=["api keys"])


def _store(session: SessionDep, config: ConfigDep, provider: Provider, key: str) -> None:
    if key_events.store_key(config, provider, key):
        identity.publish(session, config)


@router.post(
    "/api/user-settings/validate-api-key",
    response_model=ValidateKeyOut,
    responses={
        502: {"model": ValidateKeyOut, "description": "provider unreachable or 5xx"},
        504: {"model": ValidateKeyOut, "description": "provider timed out"},
        403: {"model": ErrorDetail, "description": "store: true from a non-admin"},
    },
)
async def validate_api_key(
    body: Annotated[ValidateKeyIn, Body()],
    user: CurrentUser,
    session: SessionDep,
    config: ConfigDep,
    client: ProviderClientDep,
) -> JSONResponse:
    if body.store and not user.is_admin:  # refused before the provider is even asked
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=FORBIDDEN_NOT_ADMIN)
    check = await providers.check_key(client, config, body.provider, body.api_key)
    KEY_VALIDATIONS.labels(body.provider, check.status).inc()
    stored = False
    if check.status == "valid" and body.store:
        await run_in_threadpool(_store, session, config, body.provider, body.api_key)
        stored = True
    out = ValidateKeyOut(
        provider=body.provider,
        status=check.status,
        detail=check.detail,
        stored=stored,
        masked_key=keystore.mask(body.api_key),
    )
    code = status.HTTP_200_OK
    if check.status == "unreachable":
        code = status.HTTP_504_GATEWAY_TIMEOUT if check.timed_out else status.HTTP_502_BAD_GATEWAY
    return JSONResponse(out.model_dump(), status_code=code)


@router.get("/api/api-keys")
def list_api_keys(user: CurrentUser, config: ConfigDep) -> ApiKeysOut:
    del user
    keys = []
    for provider in PROVIDERS:
        key = keystore.read_key(config.secrets_dir, provider)
        keys.append(
            StoredKey(
                provider=provider,
                stored=key is not None,
                masked_key=keystore.mask(key) if key else None,
                updated_at=keystore.key_mtime(config.secrets_dir, provider) if key else None,
            )
        )
    return ApiKeysOut(keys=keys)


@router.delete(
    "/api/api-keys/{provider}",
    responses={403: {"model": ErrorDetail, "description": "the caller is not an admin"}},
)
def delete_api_key(
    provider: Provider, admin: AdminUser, session: SessionDep, config: ConfigDep
) -> StoredKey:
    del admin
    if key_events.delete_key(config, provider):
        identity.publish(session, config)  # saved Gemini choices now fall back to local
    return StoredKey(provider=provider, stored=False)
