"""nova-model-residency: serve several local models at one llama-server address.

    nova-model-residency --config /etc/nova/llama-models.json
    nova-model-residency --config FILE --plan      # footprints and budget, then exit

The unit's ExecStart where a host serves more than one local model (role llama_server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

import httpx
import uvicorn

from nova_common import journal
from nova_common.credentials import read_secret
from nova_gpu_sizing.vram import MiB

from .app import build_app
from .config import ConfigError, load
from .footprint import footprint, measure_budget
from .residency import Residency

PROG = "nova-model-residency"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--plan", action="store_true", help="print the footprints and budget")
    args = parser.parse_args(argv)
    journal.install()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    # Not a line per request passed on.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log = logging.getLogger(PROG)
    try:
        config = load(args.config)
    except ConfigError as e:
        print(f"{PROG}: bad configuration: {e}", file=sys.stderr)
        return 2
    footprints = {m.name: footprint(m) for m in config.models}
    budget = measure_budget(config)
    if args.plan:
        print(
            json.dumps(
                {
                    "budget_mib": budget.bytes // MiB,
                    "budget": budget.detail,
                    "models": {n: f.detail for n, f in footprints.items()},
                },
                indent=2,
            )
        )
        return 0
    log.info("memory for models: %s: %d MiB", budget.detail, budget.bytes // MiB)
    for model in config.models:
        flags = ", ".join(f for f, on in (("pinned", model.pin), ("preload", model.preload)) if on)
        detail = footprints[model.name].detail
        log.info("model %s: %s%s", model.name, detail, f" ({flags})" if flags else "")
    api_key = read_secret(config.api_key_file)
    if not api_key:
        print(f"{PROG}: no API key in {config.api_key_file}", file=sys.stderr)
        return 2

    async def serve() -> None:
        timeout = httpx.Timeout(connect=5.0, read=None, write=30.0, pool=None)
        async with httpx.AsyncClient(timeout=timeout) as client:
            residency = Residency(config, budget, footprints, client)
            server = uvicorn.Server(
                uvicorn.Config(
                    build_app(residency, api_key),
                    host=config.host,
                    port=config.port,
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    lifespan="on",
                )
            )
            await server.serve()
            if not server.started:
                raise SystemExit(1)

    try:
        asyncio.run(serve())
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
