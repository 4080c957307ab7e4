"""Provider API keys: validate (and store), list masked, delete.

Status codes of ``POST /api/user-settings/validate-api-key``:

* 200 with ``status: "valid"`` or ``status: "rejected"`` - the provider gave an answer;
* 502 with ``status: "unreachable"`` - connection error, 5xx or an answer that says nothing
  about the key; 504 with ``status: "unreachable"`` - the provider did not answer in time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ... import providers
from ...core.config import PROVIDERS, Provider
from ...gateway import key_events, keystore
from ...schemas import ApiKeysOut, StoredKey, ValidateKeyIn, ValidateKeyOut
from ..deps import ConfigDep, CurrentUser, ProviderClientDep

router = APIRouter(tags=["api keys"])


@router.post(
    "/api/user-settings/validate-api-key",
    response_model=ValidateKeyOut,
    responses={
        502: {"model": ValidateKeyOut, "description": "provider unreachable or 5xx"},
        504: {"model": ValidateKeyOut, "description": "provider timed out"},
    },
)
async def validate_api_key(
    body: Annotated[ValidateKeyIn, Body()],
    user: CurrentUser,
    config: ConfigDep,
    client: ProviderClientDep,
) -> JSONResponse:
    del user
    check = await providers.check_key(client, config, body.provider, body.api_key)
    stored = False
    if check.status == "valid" and body.store:
        await run_in_threadpool(key_events.store_key, config, body.provider, body.api_key)
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


@router.delete("/api/api-keys/{provider}")
def delete_api_key(provider: Provider, user: CurrentUser, config: ConfigDep) -> StoredKey:
    del user
    key_events.delete_key(config, provider)
    return StoredKey(provider=provider, stored=False)
