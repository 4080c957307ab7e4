"""The FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from . import __version__
from .auth import UserLookup
from .commit_stamp import CommitStamp
from .config import Config
from .db import PointReader, migrate, open_database
from .middleware import AccessLogMiddleware, BodySizeLimitMiddleware, DbScopeMiddleware
from .routes import health, keys, models, settings, system

log = logging.getLogger(__name__)


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the offending input (it may be an API key) or context."""
    cleaned = []
    for error in errors:
        loc = [part for part in error.get("loc", ())]
        cleaned.append({"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")})
    return cleaned


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        {"detail": _clean_errors(exc.errors())},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


PUBLIC_PATHS = frozenset({"/health", "/api/ping"})


def _openapi_with_bearer(app: FastAPI) -> Any:
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
                    "description": "The token written by `nova-settings-admin ensure-user`.",
                }
            }
            for path, operations in schema.get("paths", {}).items():
                if path in PUBLIC_PATHS:
                    continue
                for operation in operations.values():
                    operation["security"] = [{"HTTPBearer": []}]
                    operation.setdefault("responses", {})["401"] = {
                        "description": "Missing or wrong bearer token"
                    }
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def create_app(config: Config) -> FastAPI:
    db = open_database(config.db_path)
    point_reader = PointReader(config.db_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with db.connection_context():
            before, after = migrate(db)
        if before != after:
            log.info("schema upgraded from version %d to %d", before, after)
        commit_stamp = CommitStamp.open(config.db_path)  # open_database() set WAL mode
        app.state.user_lookup = UserLookup(point_reader, commit_stamp)
        if not config.local_model:
            log.warning("NOVA_LOCAL_MODEL is not set: no model will count as local")
        app.state.local_client = httpx.AsyncClient(trust_env=False)
        app.state.provider_client = httpx.AsyncClient(trust_env=True)
        # Everything built so far (routes, schemas, pydantic validators) lives as long as the
        # process: keep it out of the cyclic GC's full collections, which would otherwise
        # walk it again and again under load.
        gc.freeze()
        log.info("nova-settings %s ready; state in %s", __version__, config.state_dir)
        try:
            yield
        finally:
            await app.state.local_client.aclose()
            await app.state.provider_client.aclose()
            point_reader.close_all()
            commit_stamp.close()
            db.close_all()

    app = FastAPI(
        title="nova-settings",
        version=__version__,
        description="Per-user LLM settings, provider API keys, models and host status.",
        lifespan=lifespan,
    )
    app.openapi = _openapi_with_bearer(app)  # type: ignore[method-assign]
    app.state.config = config
    app.state.db = db
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Routes are matched in order, one by one: the constant baseline and the settings read
    # (the hot route) first, the OpenAPI documents (rare) last. The routers' routes are
    # added to the app's own table rather than through include_router(): FastAPI 0.165 keeps
    # an included router as a nested router that is matched twice per request, which cost
    # more than the settings query itself (scripts/bench-settings). Our routers carry their
    # prefix and tags on the routes and have no router-level dependencies, so nothing is lost.
    docs = list(app.router.routes)
    app.router.routes[:] = [
        route
        for router in (health.router, settings.router, keys.router, models.router, system.router)
        for route in router.routes
    ] + docs
    # Added last = outermost: the access log also sees the 413s.
    app.add_middleware(DbScopeMiddleware, db=db)
    app.add_middleware(BodySizeLimitMiddleware, limit=config.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)
    return app
