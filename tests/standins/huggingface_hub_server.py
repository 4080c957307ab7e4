"""A loopback stand-in for the Hugging Face Hub's file-resolve endpoint.

It answers what the pinned huggingface_hub (1.33.x) asks for when it downloads one file over
plain HTTP (``get_hf_file_metadata`` + ``http_get``):

* ``HEAD /{repo}/resolve/{revision}/{file}``: ``X-Repo-Commit``, ``ETag`` / ``X-Linked-Etag``
  (the quoted sha256, as for an LFS file), ``X-Linked-Size`` and ``Content-Length``. No Xet
  headers (``X-Xet-Hash``, ``Link: <...>; rel="xet-auth"``) are ever sent, so the library never
  switches to the Xet protocol.
* ``GET`` of the same URL, with ``Range: bytes=N-`` answered by ``206`` + ``Content-Range``.
* Optionally (``lfs_redirect=True``) the resolve URL answers ``302`` to a "CDN" URL on another
  host name (``localhost`` instead of ``127.0.0.1``), as the real Hub does for LFS files; the
  client must then not send its token there.
* Errors in the form ``huggingface_hub.utils.hf_raise_for_status`` understands:
  ``X-Error-Code: RepoNotFound | RevisionNotFound | EntryNotFound``.

Fault injection for tests: ``drop_after_bytes`` (first body GET closes the connection cleanly
mid-body, once), ``reset_after_bytes`` (same but with a TCP RST, once), ``corrupt`` (one byte of
the body differs from what the advertised sha256 describes), ``fail_first_gets`` (answer 503),
``bytes_per_second`` (throttle). Every request is logged in ``requests``.

Manual use::

    .venv/bin/python -m tests.standins.huggingface_hub_server --port 8999 --repo org/model \\
        --file model.gguf --path ./model.gguf
    HF_ENDPOINT=http://127.0.0.1:8999 nova-model-fetch hf --repo org/model ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import LoopbackStandin, StandinHandler

DEFAULT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE_RE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<file>.+)")
_RANGE_RE = re.compile(r"bytes=(?P<start>\d+)-(?P<end>\d*)")
_SEND_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RequestRecord:
    """One request as the stand-in saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    @property
    def range_start(self) -> int | None:
        match = _RANGE_RE.fullmatch(self.range or "")
        return int(match["start"]) if match else None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


class _Handler(StandinHandler):
    """The resolve protocol, on the shared handler."""

    def _send(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes = b"",
        *,
        head: bool = False,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(
        self, status: int, code: str, message: str, head: bool, extra: dict[str, str]
    ) -> None:
        body = json.dumps({"error": message}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Error-Code": code,
            "X-Error-Message": message,
            **extra,
        }
        self._send(status, headers, body, head=head)

    def resolve(self, *, head: bool) -> None:
        hub: HubStandin = self.server.standin  # type: ignore[assignment]
        path = unquote(urlsplit(self.path).path)
        hub.record(
            RequestRecord(
                method=self.command,
                path=path,
                headers={k.lower(): v for k, v in self.headers.items()},
            )
        )
        if path.startswith("/lfs/"):
            # The "CDN": a signed-URL-like host that needs no token.
            if path != f"/lfs/{hub.sha256}":
                self._error(404, "EntryNotFound", "Blob not found", head, {})
            elif head:
                self._send(200, {"ETag": f'"{hub.sha256}"'}, head=True, length=hub.size)
            else:
                self._serve_body(hub)
            return

        match = _RESOLVE_RE.fullmatch(path)
        if match is None or match["repo"] != hub.repo:
            self._error(404, "RepoNotFound", "Repository not found", head, {})
            return
        auth = self.headers.get("Authorization")
        expected_auth = f"Bearer {hub.token}" if hub.token is not None else None
        if (hub.private and auth != expected_auth) or (
            auth is not None and expected_auth is not None and auth != expected_auth
        ):
            self._error(401, "RepoNotFound", "Invalid username or password.", head, {})
            return
        if match["revision"] not in ("main", hub.commit):
            self._error(404, "RevisionNotFound", "Invalid rev id", head, {})
            return
        commit_header = {"X-Repo-Commit": hub.commit}
        if match["file"] != hub.filename:
            self._error(404, "EntryNotFound", "Entry not found", head, commit_header)
            return

        headers = {
            **commit_header,
            "ETag": f'"{hub.sha256}"',
            "X-Linked-Etag": f'"{hub.sha256}"',
            "X-Linked-Size": str(hub.size),
            "Accept-Ranges": "bytes",
        }
        if hub.lfs_redirect:
            headers["Location"] = f"{hub.cdn_endpoint}/lfs/{hub.sha256}"
            self._send(302, headers, head=head)
            return
        if head:
            self._send(200, headers, head=True, length=hub.size)
            return
        self._serve_body(hub, headers)

    def _serve_body(self, hub: HubStandin, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if hub.take_failure():
            self._error(503, "ServiceUnavailable", "try again later", False, {})
            return
        start, end = 0, hub.size - 1
        status = 200
        range_header = self.headers.get("Range")
        if range_header:
            match = _RANGE_RE.fullmatch(range_header.strip())
            if match is None:
                self._error(416, "RangeNotSatisfiable", "bad range", False, {})
                return
            start = int(match["start"])
            if match["end"]:
                end = min(int(match["end"]), hub.size - 1)
            if start >= hub.size or start > end:
                self._send(416, {"Content-Range": f"bytes */{hub.size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{hub.size}"
        length = end - start + 1
        headers["Content-Type"] = "application/octet-stream"
        self._send(status, headers, length=length)

        drop_after = hub.take_fault("drop_after_bytes")
        reset_after = hub.take_fault("reset_after_bytes")
        cut = drop_after if drop_after is not None else reset_after
        sent = 0
        while sent < length:
            n = min(_SEND_CHUNK, length - sent)
            if cut is not None:
                n = min(n, cut - sent)
            if n > 0:
                self.wfile.write(hub.read(start + sent, n))
                sent += n
                if hub.bytes_per_second:
                    time.sleep(n / hub.bytes_per_second)
            if cut is not None and sent >= cut:
                self._cut(reset=reset_after is not None)
                return

    def _cut(self, *, reset: bool) -> None:
        """Close the connection mid-body: a FIN (clean close) or an RST (reset)."""
        self.close_connection = True
        self.wfile.flush()
        if reset:
            # An RST discards whatever the client has not read yet: give it time to drain, so
            # that the bytes sent before the cut reach the client (as they would on a WAN).
            time.sleep(0.5)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        else:
            self.connection.shutdown(socket.SHUT_RDWR)


class HubStandin(LoopbackStandin):
    """Serve one file of one repo like the Hub's ``/resolve`` endpoint, on loopback."""

    METHODS = ("GET", "HEAD")
    HANDLER = _Handler
    QUIET_ERRORS = True  # dropped and reset connections are the point of some tests

    def __init__(
        self,
        *,
        repo: str,
        filename: str,
        content: bytes | None = None,
        path: Path | str | None = None,
        commit: str = DEFAULT_COMMIT,
        private: bool = False,
        token: str | None = None,
        lfs_redirect: bool = False,
        drop_after_bytes: int | None = None,
        reset_after_bytes: int | None = None,
        corrupt: bool = False,
        fail_first_gets: int = 0,
        bytes_per_second: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if (content is None) == (path is None):
            raise ValueError("give exactly one of content= or path=")
        super().__init__(host, port)
        self.repo = repo
        self.filename = filename
        self._content = content
        self._path = Path(path) if path is not None else None
        self.size = len(content) if content is not None else self._path.stat().st_size  # type: ignore[union-attr]
        self.sha256 = self._hash()
        self.commit = commit
        self.private = private
        self.token = token
        self.lfs_redirect = lfs_redirect
        self.drop_after_bytes = drop_after_bytes
        self.reset_after_bytes = reset_after_bytes
        self.corrupt = corrupt
        self.fail_first_gets = fail_first_gets
        self.bytes_per_second = bytes_per_second
        self.requests: list[RequestRecord] = []

    # -- addresses -------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn_endpoint(self) -> str:
        return f"http://localhost:{self.port}"

    def serve(self, request: StandinHandler) -> None:
        request.resolve(head=request.command == "HEAD")  # type: ignore[attr-defined]

    # -- request log -----------------------------------------------------------------------
    def record(self, rec: RequestRecord) -> None:
        with self.lock:
            self.requests.append(rec)

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def gets(self) -> list[RequestRecord]:
        with self.lock:
            return [r for r in self.requests if r.method == "GET"]

    def take_fault(self, name: str) -> int | None:
        """Return a one-shot fault's byte count and disarm it."""
        with self.lock:
            value = getattr(self, name)
            setattr(self, name, None)
            return value

    def take_failure(self) -> bool:
        with self.lock:
            if self.fail_first_gets > 0:
                self.fail_first_gets -= 1
                return True
            return False

    # -- content ---------------------------------------------------------------------------
    def _hash(self) -> str:
        if self._content is not None:
            return hashlib.sha256(self._content).hexdigest()
        digest = hashlib.sha256()
        with self._path.open("rb") as f:  # type: ignore[union-attr]
            while block := f.read(1 << 20):
                digest.update(block)
        return digest.hexdigest()

    def read(self, offset: int, length: int) -> bytes:
        if self._content is not None:
            data = self._content[offset : offset + length]
        else:
            with self._path.open("rb") as f:  # type: ignore[union-attr]
                f.seek(offset)
                data = f.read(length)
        flip = self.size // 2
        if self.corrupt and offset <= flip < offset + len(data):
            i = flip - offset
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--file", required=True, dest="filename")
    parser.add_argument("--path", required=True, type=Path, help="local file to serve")
    parser.add_argument("--commit", default=DEFAULT_COMMIT)
    parser.add_argument("--token", help="expected token (Authorization: Bearer ...)")
    parser.add_argument("--private", action="store_true", help="401 without the token")
    parser.add_argument("--lfs-redirect", action="store_true")
    parser.add_argument("--drop-after-bytes", type=int)
    parser.add_argument("--corrupt", action="store_true")
    parser.add_argument("--bytes-per-second", type=int)
    args = parser.parse_args()
    hub = HubStandin(
        repo=args.repo,
        filename=args.filename,
        path=args.path,
        commit=args.commit,
        private=args.private,
        token=args.token,
        lfs_redirect=args.lfs_redirect,
        drop_after_bytes=args.drop_after_bytes,
        corrupt=args.corrupt,
        bytes_per_second=args.bytes_per_second,
        host=args.host,
        port=args.port,
    )
    print(f"serving {args.repo}/{args.filename} (sha256 {hub.sha256}, {hub.size} bytes)")
    print(f"HF_ENDPOINT=http://{args.host}:{hub.port}", flush=True)
    hub.serve_forever()


if __name__ == "__main__":
    main()
