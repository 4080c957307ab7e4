"""Start LiteLLM's proxy on the listening socket systemd holds (``nova-litellm.socket``).

``python -m nova_gateway.serve ARGS`` is ``litellm ARGS``, except that when systemd passed this
process a listening socket (socket activation: ``LISTEN_PID`` is this process, ``LISTEN_FDS``
>= 1) uvicorn serves that socket instead of binding its own. The socket outlives the gateway:
while LiteLLM restarts (a crash, a config reload) new connections wait in its backlog instead of
being refused, and are answered once the new workers accept.

LiteLLM's CLI has no ``--fd`` and calls ``uvicorn.run(..., workers=N)``; uvicorn's own ``fd``
path wraps the descriptor as AF_UNIX, so asyncio would skip TCP_NODELAY on every connection. So
uvicorn is handed the socket as what it is: ``Config.bind_socket`` (the multi-worker path binds
once in the supervisor and passes the socket to each worker) and ``Server.run`` (one worker)
return or get the inherited socket. Without socket activation nothing is changed.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import MutableMapping

# sd_listen_fds(3): the first passed descriptor.
SD_LISTEN_FDS_START = 3

# uvicorn configures this logger before it binds.
log = logging.getLogger("uvicorn.error")


def inherited_socket(environ: MutableMapping[str, str] = os.environ) -> socket.socket | None:
    """The listening socket systemd passed to this very process, or None.

    Only the first descriptor is used (the unit has one ListenStream=). The variables are
    removed so that processes started from here do not take them for their own.
    """
    pid, fds = environ.pop("LISTEN_PID", None), environ.pop("LISTEN_FDS", None)
    environ.pop("LISTEN_FDNAMES", None)
    if pid is None or fds is None or int(pid) != os.getpid() or int(fds) < 1:
        return None
    # socket(fileno=) reads family and type from the descriptor: AF_INET, SOCK_STREAM.
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    if sock.type != socket.SOCK_STREAM:
        raise SystemExit(f"fd {SD_LISTEN_FDS_START} from systemd is not a stream socket")
    return sock


def serve_on(sock: socket.socket) -> None:
    """Make uvicorn serve ``sock`` wherever it would bind its own."""
    import uvicorn.config
    import uvicorn.server

    host, port = sock.getsockname()[:2]

    def inherited(self: uvicorn.config.Config | None = None) -> socket.socket:
        log.info("serving http://%s:%s on the socket systemd holds", host, port)
        return sock

    run = uvicorn.server.Server.run

    def run_on_socket(
        self: uvicorn.server.Server, sockets: list[socket.socket] | None = None
    ) -> None:
        run(self, sockets=[inherited()] if sockets is None else sockets)

    uvicorn.config.Config.bind_socket = inherited  # type: ignore[method-assign]
    uvicorn.server.Server.run = run_on_socket  # type: ignore[method-assign]


def main() -> None:
    sock = inherited_socket()
    if sock is not None:
        serve_on(sock)
    from litellm.proxy.proxy_cli import run_server

    sys.argv[0] = "litellm"
    run_server()


if __name__ == "__main__":
    main()
