"""nova_gateway.serve: uvicorn serves the listening socket systemd passed, as systemd passes it
(fd 3, LISTEN_PID = the process, LISTEN_FDS = 1), with one worker and with several; without
those variables it binds its own as before. Real uvicorn and real sockets, in the gateway venv."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from nova_common.ports import free_port
from nova_gateway.serve import inherited_socket

# A tiny ASGI app served by uvicorn.run the way LiteLLM's CLI calls it (host, port, workers),
# after nova_gateway.serve has taken the inherited socket. It answers with its worker's pid.
# A file, not -c: uvicorn's workers import the app by name.
SERVER = textwrap.dedent(
    """
    import os, socket, sys
    import uvicorn
    from nova_gateway.serve import inherited_socket, serve_on

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})

    if __name__ == "__main__":
        sock = inherited_socket()
        if sock is not None:
            serve_on(sock)
    if __name__ == "__main__":
        uvicorn.run("serve_app:app", host="127.0.0.1", port=int(sys.argv[2]),
                    workers=int(sys.argv[1]), log_level="warning")
    """
)


def start(
    app_dir: Path,
    workers: int,
    listener: socket.socket | None,
    bind_port: int,
    script: str | None = None,
    **kw,
) -> subprocess.Popen:
    """The server as systemd would start it: the socket dup'ed to fd 3, and LISTEN_PID set by a
    shell that then execs Python (same pid)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env["PYTHONPATH"] = str(app_dir)
    run = ["-c", script] if script else [str(app_dir / "serve_app.py")]
    command = [sys.executable, *run, str(workers), str(bind_port)]
    if listener is None:
        return subprocess.Popen(command, env=env)
    fd = listener.fileno()
    shell = 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"'
    return subprocess.Popen(
        ["/bin/sh", "-c", shell, "sh", *command],
        env=env,
        preexec_fn=lambda: os.dup2(fd, 3),
        close_fds=False,
        **kw,
    )


def answers(port: int, timeout: float = 60) -> set[str]:
    """The worker pids that answered 20 requests on fresh connections (waits for the first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pids = set()
            for _ in range(20):
                with httpx.Client(timeout=10) as client:
                    pids.add(client.get(f"http://127.0.0.1:{port}/").text)
            return pids
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve")
    (path / "serve_app.py").write_text(SERVER)
    return path


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    yield sock
    sock.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_serves_the_socket_systemd_passed(app_dir, listener, workers):
    port = listener.getsockname()[1]
    # uvicorn is told another port; it must not bind that one but serve the inherited socket.
    unused = free_port()
    server = start(app_dir, workers, listener, unused)
    try:
        pids = answers(port)
        assert pids and all(pid.isdigit() for pid in pids)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{unused}/", timeout=2)
    finally:
        server.terminate()
        server.wait(30)
    # The listening socket is still ours after the server is gone: a restart would find it.
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_connections_made_while_it_restarts_are_answered_after(app_dir, listener):
    """What socket activation is for: a client that connects while no server runs waits in the
    backlog and is answered by the next server, instead of being refused."""
    port = listener.getsockname()[1]
    client = httpx.Client(timeout=60)
    try:
        first = start(app_dir, 1, listener, free_port())
        before = answers(port)
        first.kill()
        first.wait(30)
        second = start(app_dir, 1, listener, free_port())
        try:
            # Connects now (systemd's socket is open); answered once the new server is up.
            response = client.get(f"http://127.0.0.1:{port}/")
            assert response.status_code == 200 and response.text not in before
        finally:
            second.terminate()
            second.wait(30)
    finally:
        client.close()


def test_without_socket_activation_uvicorn_binds_its_own_port(app_dir):
    port = free_port()
    server = start(app_dir, 1, None, port)
    try:
        assert answers(port)
    finally:
        server.terminate()
        server.wait(30)


def test_the_socket_is_taken_as_what_it_is(app_dir, listener):
    """AF_INET, not uvicorn's AF_UNIX wrapping of an fd: asyncio sets TCP_NODELAY only on
    AF_INET/AF_INET6 connections, and small streamed chunks would otherwise wait (Nagle)."""
    script = "from nova_gateway.serve import inherited_socket; s = inherited_socket(); "
    script += "import os; print(s.family.name, s.getsockname()[1], 'LISTEN_PID' in os.environ)"
    probe = start(app_dir, 1, listener, 0, script, stdout=subprocess.PIPE, text=True)
    out, _ = probe.communicate(timeout=30)
    assert out.split() == ["AF_INET", str(listener.getsockname()[1]), "False"]


def test_only_the_process_systemd_started_takes_the_socket():
    # Another pid (a child that inherited the variables): nothing is taken, the variables go.
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x"}
    assert inherited_socket(environ) is None
    assert environ == {}
    assert inherited_socket({}) is None
