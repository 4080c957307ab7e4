"""The settings page's routes: sign-in, My model, Gateway key, Try it, Usage, Admin, Status.

Each page is a view over the same handlers the JSON API runs (``api/routes``), called with the
signed-in user, so the rules (validation, admin-only, last admin, publishing to the gateway)
are decided once. Every POST needs the session's CSRF token; every page but sign-in needs a
session (a GET without one is sent to sign-in, anything else gets 401).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .. import crud, discovery
from ..api.deps import get_session
from ..api.middleware import USER_STATE_KEY
from ..api.routes import gateway_key, keys, system, usage, users
from ..api.routes.settings import apply_changes
from ..core.config import PROVIDERS, Config, Provider
from ..gateway import identity, litellm_config
from ..schemas import SettingsOut, SettingsPut, UserCreate, UserPatch, ValidateKeyIn
from . import charts, host_state, plots, session
from .render import page, static_file
from .session import COOKIE_NAME, CSRF_FIELD, CSRF_HEADER, SignedIn

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

MAX_MESSAGE_CHARS = 4000
USAGE_DAYS = 14
NAV = (
    ("/", "My model"),
    ("/key", "Gateway key"),
    ("/try", "Try it"),
    ("/usage", "Usage"),
    ("/status", "Status"),
)
ADMIN_NAV = ("/admin", "Admin")


class SignInRequired(Exception):
    """No live session: a GET goes to sign-in, anything else gets 401."""


class PageError(Exception):
    """A refusal shown as a page (403 not an admin, 403 CSRF, 400 bad form...)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


# --- Dependencies ---------------------------------------------------------------------------------


async def signed_in(request: Request) -> SignedIn:
    db = await get_session(request)
    found = session.load(db, request.cookies.get(COOKIE_NAME))
    if found is None:
        raise SignInRequired
    request.scope.setdefault("state", {})[USER_STATE_KEY] = found.user.name
    return found


Web = Annotated[SignedIn, Depends(signed_in)]


def _config(request: Request) -> Config:
    return request.app.state.config


async def read_form(request: Request, signed: SignedIn | None = None) -> dict[str, str]:
    """The urlencoded form (first value of each field); with ``signed`` the CSRF token in it
    (or in the X-CSRF-Token header) must be the session's, else 403 and nothing happens."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        if signed is not None:  # a forged write is refused as such, whatever its body
            require_csrf(signed, request.headers.get(CSRF_HEADER))
        raise PageError(415, "Send the form as application/x-www-form-urlencoded.")
    try:
        text = (await request.body()).decode("utf-8")
        fields = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "The form could not be read (not UTF-8).") from None
    if signed is not None:
        require_csrf(signed, fields.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER))
    return fields


def require_csrf(signed: SignedIn, presented: str | None) -> None:
    if not session.csrf_ok(signed, presented):
        raise PageError(
            403, "This form's security token is missing or out of date: reload the page."
        )


def require_admin(signed: SignedIn) -> None:
    if not signed.user.is_admin:
        raise PageError(403, "Only an admin may open this page (your role: user).")


def _common(request: Request, signed: SignedIn, active: str) -> dict[str, Any]:
    nav = [*NAV, ADMIN_NAV] if signed.user.is_admin else list(NAV)
    return {"user": signed.user, "csrf": signed.csrf_token, "nav": nav, "active": active}


def _safe_next(target: str | None) -> str:
    """Only paths on this site (no //host, no scheme) are followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


# --- Error handlers (installed by api/main.py) ----------------------------------------------------


async def sign_in_required(request: Request, exc: Exception) -> Response:
    if request.method in ("GET", "HEAD"):
        path = request.url.path
        query = f"?{request.url.query}" if request.url.query else ""
        return _see_other(f"/signin?next={quote(path + query, safe='/')}")
    return JSONResponse({"detail": "Not signed in: sign in again."}, status_code=401)


async def page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
    return page("error.html", exc.status_code, message=exc.message, code=exc.status_code)


# --- Static files ---------------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    return static_file(name, request.headers.get("if-none-match"))


# --- Sign in / out --------------------------------------------------------------------------------


@router.get("/signin")
async def signin_page(request: Request, next: str = "/") -> Response:
    db = await get_session(request)
    if session.load(db, request.cookies.get(COOKIE_NAME)) is not None:
        return _see_other(_safe_next(next))
    return page("signin.html", next=_safe_next(next), error=None)


@router.post("/signin")
async def signin(request: Request) -> Response:
    config = _config(request)
    throttle: session.SignInThrottle = request.app.state.signin_throttle
    client = _client(request)
    wait = throttle.retry_after(client)
    if wait is not None:
        response = page(
            "signin.html",
            429,
            next="/",
            error=f"Too many failed sign-ins from your address. Try again in {wait} s.",
        )
        response.headers["retry-after"] = str(wait)
        return response
    fields = await read_form(request)
    target = _safe_next(fields.get("next"))
    token = fields.get("token", "").strip()
    user = request.app.state.user_lookup.user_for_token(token) if token else None
    if user is None:
        throttle.failed(client)
        log.warning("failed sign-in to the settings page from %s", client)
        return page(
            "signin.html",
            401,
            next=target,
            error="That token was not accepted. Check it and try again "
            "(an admin can issue a new one: nova-settings-admin user token NAME --rotate).",
        )
    throttle.succeeded(client)
    db = await get_session(request)
    cookie, expires = await run_in_threadpool(session.start, db, user.id, config.web_session_hours)
    log.info("user %s signed in to the settings page", user.name)
    response = _see_other(target)
    response.set_cookie(
        COOKIE_NAME,
        cookie,
        max_age=int(config.web_session_hours * 3600),
        expires=expires,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _sign_out(db: Any, config: Config, cookie: str) -> None:
    if session.end(db, cookie):
        identity.publish(db, config)  # the session's Try-it key stops working now


@router.post("/signout")
async def signout(request: Request, signed: Web) -> Response:
    await read_form(request, signed)
    db = await get_session(request)
    await run_in_threadpool(_sign_out, db, _config(request), signed.cookie)
    response = _see_other("/signin")
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


# --- My model -------------------------------------------------------------------------------------


SETTING_FIELDS = {"llm_model", "llm_temperature", "llm_max_tokens"}


def _current_settings(signed: SignedIn, config: Config) -> dict[str, Any]:
    """The form's values: the saved row as the API shows it, or the defaults it would seed."""
    saved = signed.user.settings
    current = (
        SettingsOut.of(saved, config.local_model)
        if saved is not None
        else SettingsOut(**crud.default_settings_row(signed.user.id, config.local_model))
    )
    return current.model_dump(include=SETTING_FIELDS) | {"llm_model": current.llm_model or ""}


async def _model_page(
    request: Request,
    signed: SignedIn,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    config = _config(request)
    catalog = await discovery.discover(request.app.state.local_client, config)
    current = _current_settings(signed, config)
    models = [
        {**m.model_dump(), "limit": discovery.context_limit(catalog, m.id)}
        for m in catalog.models.values()
    ]
    shown = values or current
    known = {m["id"] for m in models}
    if shown["llm_model"] and shown["llm_model"] not in known:
        models.append(
            {
                "id": shown["llm_model"],
                "available": False,
                "reason": "the gateway does not offer this model now",
                "limit": None,
                "kind": "other",
            }
        )
    limit = next((m["limit"] for m in models if m["id"] == shown["llm_model"]), None)
    return page(
        "model.html",
        status_code,
        **_common(request, signed, "/"),
        models=models,
        gateway=catalog.gateway,
        values=shown,
        limit=limit,
        errors=errors or {},
        notice=notice,
        unavailable=litellm_config.unavailable_reason(config, current["llm_model"]),
    )


@router.get("/")
async def model_page(request: Request, signed: Web, saved: int = 0) -> Response:
    return await _model_page(request, signed, notice="Saved." if saved else None)


def _number(text: str, kind: type[int] | type[float]) -> object:
    """A form field as a number when it is one; else the text, which validation then refuses."""
    try:
        return kind(text.strip())
    except ValueError:
        return text


@router.post("/")
async def save_model(request: Request, signed: Web) -> Response:
    fields = await read_form(request, signed)
    values = {name: fields.get(name, "") for name in SETTING_FIELDS}
    errors: dict[str, str] = {}
    try:
        body = SettingsPut.model_validate(
            {
                "llm_model": values["llm_model"],
                "llm_temperature": _number(values["llm_temperature"], float),
                "llm_max_tokens": _number(values["llm_max_tokens"], int),
            }
        )
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "llm_model"
            message = error["msg"]
            if error["type"] in ("float_type", "int_type", "float_parsing", "int_parsing"):
                message = "Enter a number." if name != "llm_max_tokens" else "Enter a whole number."
            errors.setdefault(name, message)
        return await _model_page(request, signed, values=values, errors=errors, status_code=422)
    db = await get_session(request)
    try:
        await apply_changes(
            signed.user,
            db,
            _config(request),
            request.app.state.local_client,
            body.model_dump(),
        )
    except HTTPException as exc:
        if isinstance(exc.detail, list):
            for item in exc.detail:
                loc = item.get("loc", [])
                errors.setdefault(str(loc[-1]) if loc else "llm_model", item.get("msg", ""))
        else:
            errors["form"] = str(exc.detail)
        return await _model_page(
            request, signed, values=values, errors=errors, status_code=exc.status_code
        )
    return _see_other("/?saved=1")


# --- Gateway key ----------------------------------------------------------------------------------


async def _key_page(
    request: Request, signed: SignedIn, key: str | None = None, notice: str | None = None
) -> Response:
    config = _config(request)
    found = await run_in_threadpool(crud.user_by_name, signed.user.name)
    return page(
        "key.html",
        **_common(request, signed, "/key"),
        has_key=found is not None and found.gateway_key_hash is not None,
        key=key,
        gateway_url=f"{config.gateway_url}/v1",
        notice=notice,
    )


@router.get("/key")
async def key_page(request: Request, signed: Web, revoked: int = 0) -> Response:
    return await _key_page(request, signed, notice="Key revoked." if revoked else None)


@router.post("/key")
async def create_key(request: Request, signed: Web) -> Response:
    await read_form(request, signed)
    db = await get_session(request)
    out = await gateway_key.create_gateway_key(signed.user, db, _config(request))
    return await _key_page(request, signed, key=out.key)


@router.post("/key/revoke")
async def revoke_key(request: Request, signed: Web) -> Response:
    await read_form(request, signed)
    db = await get_session(request)
    await gateway_key.revoke_gateway_key(signed.user, db, _config(request))
    return _see_other("/key?revoked=1")


# --- Try it ---------------------------------------------------------------------------------------


def _admit_try_key(db: Any, config: Config, signed: SignedIn) -> None:
    if session.admit_try_key(db, signed):
        identity.publish(db, config)


def _chat_request(request: Request, signed: SignedIn, message: str, stream: bool) -> httpx.Request:
    """The chat completion Try it sends the gateway as the signed-in user (their settings:
    ``model="default"``), with the session's own gateway key."""
    body: dict[str, Any] = {
        "model": "default",
        "messages": [{"role": "user", "content": message}],
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    client: httpx.AsyncClient = request.app.state.local_client
    return client.build_request(
        "POST",
        f"{_config(request).gateway_url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {session.try_key(signed.cookie)}"},
        timeout=httpx.Timeout(300, connect=5),
    )


def _gateway_error(response_body: bytes, status_code: int) -> str:
    try:
        data = json.loads(response_body)
        error = data.get("error", data)
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        message = None
    return f"The gateway answered HTTP {status_code}: {message or 'no details'}"


async def _prepare_try(request: Request, signed: SignedIn, message: str) -> str:
    message = message.strip()
    if not message:
        raise PageError(422, "Type a message first.")
    if len(message) > MAX_MESSAGE_CHARS:
        raise PageError(422, f"The message is longer than {MAX_MESSAGE_CHARS} characters.")
    db = await get_session(request)
    await run_in_threadpool(_admit_try_key, db, _config(request), signed)
    return message


@router.get("/try")
async def try_page(request: Request, signed: Web) -> Response:
    return page("try.html", **_common(request, signed, "/try"), reply=None, message="")


@router.post("/try")
async def try_without_js(request: Request, signed: Web) -> Response:
    """The form's plain POST (no JavaScript): the whole reply at once."""
    fields = await read_form(request, signed)
    message = await _prepare_try(request, signed, fields.get("message", ""))
    client: httpx.AsyncClient = request.app.state.local_client
    try:
        upstream = await client.send(_chat_request(request, signed, message, stream=False))
    except httpx.HTTPError as exc:
        raise PageError(502, f"The gateway could not be reached: {type(exc).__name__}") from None
    if upstream.status_code != 200:
        raise PageError(502, _gateway_error(upstream.content, upstream.status_code))
    data = upstream.json()
    reply = {
        "text": data["choices"][0]["message"].get("content") or "",
        "model": upstream.headers.get("x-nova-model") or data.get("model"),
        "fallback": upstream.headers.get("x-nova-fallback-reason"),
    }
    return page("try.html", **_common(request, signed, "/try"), reply=reply, message=message)


@router.post("/try/stream")
async def try_stream(request: Request, signed: Web) -> Response:
    """Try it with JavaScript: the gateway's server-sent events, passed through as they come."""
    require_csrf(signed, request.headers.get(CSRF_HEADER))
    try:
        payload = json.loads(await request.body())
        message = payload["message"] if isinstance(payload, dict) else None
    except (ValueError, KeyError):
        message = None
    if not isinstance(message, str):
        raise PageError(422, 'Send {"message": "..."} as JSON.')
    message = await _prepare_try(request, signed, message)
    client: httpx.AsyncClient = request.app.state.local_client
    try:
        upstream = await client.send(
            _chat_request(request, signed, message, stream=True), stream=True
        )
    except httpx.HTTPError as exc:
        raise PageError(502, f"The gateway could not be reached: {type(exc).__name__}") from None
    if upstream.status_code != 200:
        body = await upstream.aread()
        await upstream.aclose()
        code = upstream.status_code if upstream.status_code in (400, 401, 429) else 502
        raise PageError(code, _gateway_error(body, upstream.status_code))
    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    for name in ("x-nova-model", "x-nova-fallback-reason"):
        if name in upstream.headers:
            headers[name] = upstream.headers[name]
    return StreamingResponse(
        upstream.aiter_raw(),
        media_type="text/event-stream",
        headers=headers,
        background=BackgroundTask(upstream.aclose),
    )


# --- Usage ----------------------------------------------------------------------------------------


@router.get("/usage")
async def usage_page(request: Request, signed: Web) -> Response:
    db = await get_session(request)
    who = "*" if signed.user.is_admin else None
    out = await run_in_threadpool(usage.read_usage, signed.user, db, who, USAGE_DAYS)
    chart = charts.usage_chart(out, datetime.now(UTC).date())
    return page(
        "usage.html",
        **_common(request, signed, "/usage"),
        usage=out,
        chart=chart,
        days=USAGE_DAYS,
        everyone=signed.user.is_admin,
    )


# --- Admin ----------------------------------------------------------------------------------------


async def _admin_page(
    request: Request,
    signed: SignedIn,
    *,
    key_result: dict[str, Any] | None = None,
    user_result: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    db = await get_session(request)
    config = _config(request)
    stored = keys.list_api_keys(signed.user, config)
    listed = await run_in_threadpool(users.list_users, signed.user, db)
    return page(
        "admin.html",
        status_code,
        **_common(request, signed, "/admin"),
        keys=stored.keys,
        users=listed.users,
        key_result=key_result,
        user_result=user_result,
    )


@router.get("/admin")
async def admin_page(request: Request, signed: Web) -> Response:
    require_admin(signed)
    return await _admin_page(request, signed)


def _provider(name: str) -> Provider:
    if name not in PROVIDERS:
        raise PageError(404, f"No provider named {name!r}.")
    return name  # type: ignore[return-value]


@router.post("/admin/keys/{provider}")
async def store_provider_key(provider: str, request: Request, signed: Web) -> Response:
    fields = await read_form(request, signed)
    require_admin(signed)
    name = _provider(provider)
    key = fields.get("api_key", "").strip()
    try:
        body = ValidateKeyIn(provider=name, api_key=key, store=True)
    except ValidationError:
        result = {
            "provider": name,
            "status": "invalid",
            "detail": "This does not look like an API key (8-512 printable characters, no spaces).",
        }
        return await _admin_page(request, signed, key_result=result, status_code=422)
    db = await get_session(request)
    answer = await keys.validate_api_key(
        body, signed.user, db, _config(request), request.app.state.provider_client
    )
    result = json.loads(bytes(answer.body))
    code = {"valid": 200, "rejected": 422}.get(result["status"], answer.status_code)
    return await _admin_page(request, signed, key_result=result, status_code=code)


@router.post("/admin/keys/{provider}/delete")
async def delete_provider_key(provider: str, request: Request, signed: Web) -> Response:
    await read_form(request, signed)
    require_admin(signed)
    db = await get_session(request)
    await run_in_threadpool(
        keys.delete_api_key, _provider(provider), signed.user, db, _config(request)
    )
    return _see_other("/admin")


@router.post("/admin/users")
async def add_user(request: Request, signed: Web) -> Response:
    fields = await read_form(request, signed)
    require_admin(signed)
    name = fields.get("name", "").strip()
    try:
        body = UserCreate(name=name, role=fields.get("role", "user"))  # type: ignore[arg-type]
    except ValidationError:
        result = {
            "ok": False,
            "message": "A name is 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit; the role is admin or user.",
        }
        return await _admin_page(request, signed, user_result=result, status_code=422)
    db = await get_session(request)
    try:
        created = await users.add_user(body, signed.user, db, _config(request))
    except HTTPException as exc:
        result = {"ok": False, "message": str(exc.detail)}
        return await _admin_page(request, signed, user_result=result, status_code=exc.status_code)
    result = {"ok": True, "name": created.name, "token": created.token}
    return await _admin_page(request, signed, user_result=result, status_code=201)


@router.post("/admin/users/{name}")
async def change_user(name: str, request: Request, signed: Web) -> Response:
    fields = await read_form(request, signed)
    require_admin(signed)
    budget_text = fields.get("daily_token_budget", "").strip()
    try:
        body = UserPatch.model_validate(
            {
                "role": fields.get("role", "user"),
                "disabled": fields.get("disabled") == "on",
                "daily_token_budget": _number(budget_text, int) if budget_text else None,
            }
        )
    except ValidationError:
        result = {
            "ok": False,
            "message": f"{name}: the daily budget is a whole number of "
            "tokens from 1 to 1000000000, or empty for none.",
        }
        return await _admin_page(request, signed, user_result=result, status_code=422)
    db = await get_session(request)
    try:
        await users.change_user(name, body, signed.user, db, _config(request))
    except HTTPException as exc:
        result = {"ok": False, "message": f"{name}: {exc.detail}"}
        return await _admin_page(request, signed, user_result=result, status_code=exc.status_code)
    return await _admin_page(request, signed, user_result={"ok": True, "message": f"{name} saved."})


# --- Plots (Prometheus) ------------------------------------------------------------------------


@router.get("/plots")
async def plots_fragment(
    request: Request, signed: Web, view: str = "status", span: str = "1h", whole: int = 0
) -> Response:
    """The plots of Status or Usage over the last hour or day, as a fragment the page's script
    inserts (``whole=1``: a page of its own, for browsers without JavaScript)."""
    if view not in ("status", "usage") or span not in plots.RANGES:
        raise PageError(422, "view is status or usage; span is 1h or 1d.")
    if view == "status":
        specs = plots.STATUS_PLOTS
    else:
        specs = plots.usage_plots(None if signed.user.is_admin else signed.user.name)
    config = _config(request)
    drawn = await plots.plots(request.app.state.local_client, config.prometheus_url, specs, span)
    context = {"plots": drawn, "view": view, "span": span, "spans": list(plots.RANGES)}
    if whole:
        return page("plots_page.html", **_common(request, signed, f"/{view}"), **context)
    return page("plots.html", **context)


# --- Status ---------------------------------------------------------------------------------------


@router.get("/status")
async def status_page(request: Request, signed: Web, part: str | None = None) -> Response:
    config = _config(request)
    client: httpx.AsyncClient = request.app.state.local_client
    state, used, good, rollback = await asyncio.gather(
        system.system_status(signed.user, config, client),
        host_state.in_use(client, config),
        run_in_threadpool(host_state.last_good, config),
        run_in_threadpool(host_state.last_rollback, config),
    )
    context = {
        **_common(request, signed, "/status"),
        "state": state,
        "in_use": used,
        "last_good": good,
        "last_rollback": rollback,
        "checked_at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
    }
    # The page's script refreshes the status by asking for this part alone.
    return page("status_body.html" if part == "body" else "status.html", **context)
