"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from . import __version__, metrics
from .api import main as api
from .api.middleware import AccessLogMiddleware, BodySizeLimitMiddleware, DbScopeMiddleware
from .core.config import Config
from .core.db import migrate, open_database
from .fast_read import CommitStamp, UserLookup, freeze_startup_heap, point_reader
from .gateway import identity
from .web.session import SignInThrottle

log = logging.getLogger(__name__)


def create_app(config: Config) -> FastAPI:
    db = open_database(config)
    reader = point_reader(db)
    sampler = metrics.install(config, db)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with db.connection_context():
            before, after = migrate(db)
        if before != after:
            log.info("schema upgraded from version %d to %d", before, after)
        # Other gateway hosts sharing the database: hear their changes, tell them ours.
        peers = identity.start_peers(db, config)
        # The gateway admits users by this snapshot: make it match the database on every start.
        try:
            identity.publish(db, config)
        except OSError as exc:
            log.error("gateway identity snapshot not written: %s", exc)
        commit_stamp = CommitStamp.for_database(db)  # open_database() set WAL mode
        app.state.user_lookup = UserLookup(reader, commit_stamp)
        if not config.local_model:
            log.warning("NOVA_LOCAL_MODEL is not set: no model will count as local")
        app.state.local_client = httpx.AsyncClient(trust_env=False)
        app.state.provider_client = httpx.AsyncClient(trust_env=True)
        sampler.start()
        freeze_startup_heap()
        log.info(
            "nova-settings %s ready; state in %s, database: %s",
            __version__,
            config.state_dir,
            db.backend,
        )
        try:
            yield
        finally:
            await app.state.local_client.aclose()
            await app.state.provider_client.aclose()
            sampler.stop()
            identity.stop_peers(peers)
            reader.close_all()
            commit_stamp.close()
            db.close_all()

    app = FastAPI(
        title="nova-settings",
        version=__version__,
        description="Per-user LLM settings, provider API keys, models and host status.",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.db = db
    app.state.signin_throttle = SignInThrottle(
        config.signin_failures_allowed, config.signin_window_s
    )
    api.install(app)
    # Added last = outermost: the access log also sees the 413s.
    app.add_middleware(DbScopeMiddleware, db=db)
    app.add_middleware(BodySizeLimitMiddleware, limit=config.max_body_bytes)
    app.add_middleware(AccessLogMiddleware)
    return app
