"""Rendering: one Jinja2 environment, the headers every page carries, the static files.

``Content-Security-Policy: default-src 'self'``: no inline script or style, nothing loaded from
elsewhere; the page's JavaScript and CSS are the two files in ``static/``, served from memory
with an ETag.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
# Pages show per-user data and sometimes a secret shown once: never cached.
PAGE_HEADERS = {**SECURITY_HEADERS, "cache-control": "no-store"}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

ENV = Environment(
    loader=PackageLoader("nova_settings.web", "templates"),
    autoescape=select_autoescape(["html", "svg"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


@lru_cache(maxsize=8)
def _static(name: str) -> tuple[bytes, str, str] | None:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in STATIC_TYPES or "/" in name or name.startswith("."):
        return None
    resource = resources.files("nova_settings.web").joinpath("static", name)
    if not resource.is_file():
        return None
    body = resource.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return body, STATIC_TYPES[suffix], etag


def static_file(name: str, if_none_match: str | None) -> Response:
    found = _static(name)
    if found is None:
        return Response("no such file", status_code=404, media_type="text/plain")
    body, media_type, etag = found
    headers = {**SECURITY_HEADERS, "etag": etag, "cache-control": "no-cache"}
    if if_none_match == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)
