"""The API put together: the routers in matching order, error handlers, the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException

from ..fast_read import flat_routes
from ..web import routes as web
from . import errors
from .routes import gateway_key, health, keys, metrics, models, settings, system, usage, users

# In matching order: the constant baseline and the settings read (the hot route) first.
ROUTERS = (
    health.router,
    settings.router,
    keys.router,
    gateway_key.router,
    usage.router,
    users.router,
    models.router,
    system.router,
    metrics.router,
    # The settings page (HTML for people; not in the OpenAPI document).
    web.router,
)

PUBLIC_PATHS = frozenset({"/health", "/api/ping"})

BEARER_DESCRIPTION = (
    "A user's token. The Ansible role keeps one per user in "
    "`/var/lib/nova-settings/tokens/<name>.token`, written by "
    "`nova-settings-admin ensure-user <name> --token-file <file>` "
    "(also `python -m nova_settings.admin`), which also replaces a token."
)

UNPROCESSABLE_DESCRIPTION = (
    "Invalid input: the body or a parameter does not match the schema, or is not JSON."
)
TOO_LARGE_DESCRIPTION = "The body is larger than NOVA_MAX_BODY_BYTES (16 KiB by default)."
# PUT/PATCH /api/user-settings/: what the schema cannot say, because it depends on the
# gateway's models at the time of the request.
SETTINGS_REFUSED_DESCRIPTION = (
    "Invalid input, or settings that are well-formed but refused now: an `llm_model` the "
    "gateway does not know or that is not available (see `GET /api/models`), or an "
    "`llm_max_tokens` above the model's context."
)


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document, with the bearer scheme on every route but the public ones."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "HTTPBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": BEARER_DESCRIPTION,
                }
            }
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    responses = operation.setdefault("responses", {})
                    if "requestBody" in operation:
                        responses["413"] = {"description": TOO_LARGE_DESCRIPTION}
                    if "422" in responses:
                        responses["422"]["description"] = (
                            SETTINGS_REFUSED_DESCRIPTION
                            if path == "/api/user-settings/" and method in ("put", "patch")
                            else UNPROCESSABLE_DESCRIPTION
                        )
                    if path in PUBLIC_PATHS:
                        continue
                    operation["security"] = [{"HTTPBearer": []}]
                    responses["401"] = {"description": "Missing or wrong bearer token"}
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def install(app: FastAPI) -> None:
    """Routes, error handlers and the OpenAPI document of the settings API, on ``app``."""
    flat_routes(app, ROUTERS)
    app.add_exception_handler(RequestValidationError, errors.validation_error)
    app.add_exception_handler(HTTPException, errors.http_error)
    app.add_exception_handler(web.SignInRequired, web.sign_in_required)
    app.add_exception_handler(web.PageError, web.page_error)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
