"""Error answers: what the OpenAPI document promises for bad input, and what the server sends.

* Invalid input is 422 with ``detail`` a list of ``{loc, msg, type}``, never echoing the
  input (it may be an API key). A body that is not JSON at all is invalid input too:
  FastAPI answers bytes that are not UTF-8 with a bare 400, which the API does not document;
  here they get the same 422 ``json_invalid`` as any other malformed JSON.
* 405 names, in ``Allow``, every method the path has: the routes sit in one flat table
  (fast_read.flat_routes) where each route only knows its own methods.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match


def clean_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the offending input or context."""
    cleaned = []
    for error in errors:
        loc = [part for part in error.get("loc", ())]
        cleaned.append({"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")})
    return cleaned


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(
        {"detail": clean_errors(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
    )


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return _unprocessable(list(exc.errors()))


def _allowed_methods(request: Request) -> str:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and isinstance(exc.__cause__, ValueError):
        # FastAPI's "There was an error parsing the body": bytes json.loads cannot decode.
        return _unprocessable(
            [{"loc": ("body",), "msg": "the body is not UTF-8 JSON", "type": "json_invalid"}]
        )
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        exc.headers = {**(exc.headers or {}), "Allow": _allowed_methods(request)}
    return await http_exception_handler(request, exc)
