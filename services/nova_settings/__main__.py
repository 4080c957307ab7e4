"""``python -m nova_settings``: run the service under uvicorn."""

from __future__ import annotations

import os
import sys

import uvicorn

from .app import create_app
from .core.config import Config
from .core.db import DatabaseConfigError
from .core.logging_setup import log_config, setup_logging


def main() -> int:
    os.umask(0o077)  # the DB and any file the service writes: owner only
    try:
        config = Config()
    except ValueError as exc:
        print(f"nova-settings: bad configuration: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    try:
        app = create_app(config)
    except DatabaseConfigError as exc:
        print(f"nova-settings: bad configuration: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_config=log_config(config.log_level),
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
