"""Logging to stderr (the journal); uvicorn's own access log is off, the app logs requests."""

from __future__ import annotations

import logging.config
from typing import Any

from nova_common import journal

FORMAT = "%(levelname)s %(name)s: %(message)s"  # no timestamps: the journal adds its own


def log_config(level: str) -> dict[str, Any]:
    """A dictConfig for the root logger and uvicorn's loggers (passed to uvicorn.run too)."""
    quiet = {"level": "WARNING", "handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "plain",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # One line per request comes from nova_settings.api.middleware.AccessLogMiddleware.
            "uvicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            # httpx logs each request URL at INFO; URLs never carry keys, but keep it terse.
            "httpx": quiet,
            "httpcore": quiet,
            # peewee logs every statement with its parameters at DEBUG: session cookies' hashes
            # and CSRF tokens among them. Never, whatever NOVA_LOG_LEVEL says.
            "peewee": quiet,
        },
    }


def setup_logging(level: str) -> None:
    journal.install()
    logging.config.dictConfig(log_config(level))
