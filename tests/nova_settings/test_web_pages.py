"""The settings page (web/) over real HTTP: sign-in, CSRF, what each page shows and refuses.

The browser tests (tests/host/test_web_ui.py) drive the same pages in Chromium on the real
host; these check the server's side of each rule, cheaply, against the stand-in upstreams.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import GOOGLE_KEY, LOCAL_MODEL, Service, Upstreams, run_service


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def browser(service: Service) -> httpx.Client:
    return httpx.Client(base_url=service.url, timeout=20.0, trust_env=False)


def sign_in(service: Service, token: str | None = None) -> httpx.Client:
    web = browser(service)
    r = web.post("/signin", data={"token": token or service.token, "next": "/"})
    assert r.status_code == 303, r.text
    return web


def save_model(web: httpx.Client, html: str, temperature: str, max_tokens: str) -> httpx.Response:
    """My model's form, posted as the browser would (with the page's CSRF token)."""
    return web.post(
        "/",
        data={
            "csrf_token": csrf_of(html),
            "llm_model": LOCAL_MODEL,
            "llm_temperature": temperature,
            "llm_max_tokens": max_tokens,
        },
    )


@pytest.fixture
def web(service: Service) -> Iterator[httpx.Client]:
    client = sign_in(service)
    yield client
    client.close()


def test_not_signed_in_every_page_redirects_to_sign_in(service: Service) -> None:
    with browser(service) as anon:
        for path in ("/", "/key", "/try", "/usage", "/status", "/admin"):
            r = anon.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/signin?next=" + path)
        r = anon.post("/", data={"llm_temperature": "1"})
        assert r.status_code == 401
        page = anon.get("/signin")
        assert page.status_code == 200
        assert 'for="token">Token<' in page.text and ">Sign in<" in page.text


def test_sign_in_sets_a_strict_httponly_expiring_cookie(service: Service) -> None:
    with browser(service) as anon:
        r = anon.post("/signin", data={"token": service.token, "next": "/usage"})
    assert r.status_code == 303 and r.headers["location"] == "/usage"
    cookie = r.headers["set-cookie"]
    assert "nova_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=28800" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert service.token not in cookie


def test_sign_in_refuses_a_wrong_token_and_never_follows_off_site(service: Service) -> None:
    with browser(service) as anon:
        r = anon.post("/signin", data={"token": "not-the-token-0123456789"})
        assert r.status_code == 401
        assert "not accepted" in r.text and "nova_session" not in r.headers.get("set-cookie", "")
        r = anon.post("/signin", data={"token": service.token, "next": "//evil.example/x"})
        assert r.headers["location"] == "/"


def test_pages_carry_the_content_security_policy(web: httpx.Client) -> None:
    r = web.get("/")
    assert r.status_code == 200
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    assert r.headers["cache-control"] == "no-store"
    assert "<script>" not in r.text and "style=" not in r.text  # nothing inline
    for name in ("app.css", "app.js"):
        static = web.get(f"/static/{name}")
        assert static.status_code == 200 and static.headers["etag"]
        again = web.get(f"/static/{name}", headers={"if-none-match": static.headers["etag"]})
        assert again.status_code == 304
    assert web.get("/static/../core/config.py").status_code == 404


def test_my_model_lists_models_with_reasons_and_the_context_limit(
    web: httpx.Client, fresh_settings: dict, no_stored_keys: None
) -> None:
    html = web.get("/").text
    for label in (
        'for="llm_model">Model<',
        'for="llm_temperature">Temperature<',
        'for="llm_max_tokens">Max tokens<',
        ">Save</button>",
    ):
        assert label in html
    assert re.search(rf'<option value="{LOCAL_MODEL}" data-limit="8192"\s+selected', html)
    # Gemini is listed but not selectable without a Google key, and says why.
    assert re.search(r'<option value="gemini-2.5-flash"[^>]*\s+disabled>', html)
    assert "no validated google API key is stored" in html
    assert "Context limit of this model: <span data-limit-value>8192</span>" in html


def test_a_bad_temperature_is_shown_at_its_field_and_nothing_is_saved(
    service: Service, web: httpx.Client, fresh_settings: dict
) -> None:
    before = service.db_row()
    html = web.get("/").text
    for bad, message in (("5", "less than or equal to 2"), ("warm", "Enter a number.")):
        r = save_model(web, html, bad, "100")
        assert r.status_code == 422
        assert re.search(r'id="llm_temperature-error" class="error">[^<]*' + message, r.text)
        assert 'aria-invalid="true"' in r.text
    r = save_model(web, html, "0.3", "999999")
    assert r.status_code == 422 and 'id="llm_max_tokens-error"' in r.text
    assert service.db_row() == before


def test_saving_my_model_changes_what_the_api_reads(
    service: Service, web: httpx.Client, client: httpx.Client, fresh_settings: dict
) -> None:
    html = web.get("/").text
    r = save_model(web, html, "0.25", "512")
    assert r.status_code == 303 and r.headers["location"] == "/?saved=1"
    saved = client.get("/api/user-settings/").json()
    assert (saved["llm_temperature"], saved["llm_max_tokens"]) == (0.25, 512)
    assert "Saved." in web.get("/?saved=1").text


def test_a_write_without_the_csrf_token_is_refused_and_changes_nothing(
    service: Service, web: httpx.Client, fresh_settings: dict
) -> None:
    before = service.db_row()
    form = {"llm_model": LOCAL_MODEL, "llm_temperature": "1.5", "llm_max_tokens": "64"}
    for extra in ({}, {"csrf_token": "forged-token-0123456789"}):
        r = web.post("/", data={**form, **extra})
        assert r.status_code == 403 and "security token" in r.text
    assert web.post("/key", data={}).status_code == 403
    assert web.post("/try/stream", json={"message": "hi"}).status_code == 403
    assert service.db_row() == before


def test_gateway_key_is_shown_once_then_revoked(web: httpx.Client, service: Service) -> None:
    page = web.get("/key").text
    r = web.post("/key", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200
    key = re.search(r'<code id="new-key">(nk-[A-Za-z0-9_\-]{43})</code>', r.text)
    assert key and f'api_key="{key.group(1)}"' in r.text and 'model="default"' in r.text
    again = web.get("/key").text
    assert key.group(1) not in again and "Rotate key" in again
    r = web.post("/key/revoke", data={"csrf_token": csrf_of(again)})
    assert r.status_code == 303
    assert "no key" in web.get("/key?revoked=1").text


def test_admin_adds_a_user_who_sees_no_admin_section_and_gets_403(
    service: Service, web: httpx.Client, client: httpx.Client
) -> None:
    html = web.get("/admin").text
    assert ">Admin<" in html and "Provider keys" in html
    r = web.post(
        "/admin/users", data={"csrf_token": csrf_of(html), "name": "webuser-1", "role": "user"}
    )
    if r.status_code == 409:  # the session's service already has them
        pytest.skip("webuser-1 exists from an earlier run of this session's service")
    assert r.status_code == 201
    token = re.search(r'<code id="new-token">([A-Za-z0-9_\-]+)</code>', r.text)
    assert token
    plain = sign_in(service, token.group(1))
    try:
        home = plain.get("/").text
        assert 'href="/admin"' not in home
        assert plain.get("/admin").status_code == 403
        users_before = client.get("/api/users").json()
        r = plain.post("/admin/users", data={"csrf_token": csrf_of(home), "name": "sneaky"})
        assert r.status_code == 403
        r = plain.post(
            "/admin/keys/google", data={"csrf_token": csrf_of(home), "api_key": GOOGLE_KEY}
        )
        assert r.status_code == 403
        assert client.get("/api/users").json() == users_before
        own = plain.get("/usage").text  # their own usage only: no column of users
        assert "Your requests" in own and '<th scope="col">User</th>' not in own
    finally:
        plain.close()


def test_provider_keys_valid_rejected_and_unreachable_look_different(
    web: httpx.Client, no_stored_keys: None, reset_modes: Upstreams
) -> None:
    html = web.get("/admin").text
    r = web.post(
        "/admin/keys/google",
        data={"csrf_token": csrf_of(html), "api_key": "AIzaSyWRONGKEY0123456789abcdefghij"},
    )
    assert r.status_code == 422 and "result-rejected" in r.text
    reset_modes.google.mode = "error"
    r = web.post("/admin/keys/google", data={"csrf_token": csrf_of(html), "api_key": GOOGLE_KEY})
    assert r.status_code in (502, 504) and "result-unreachable" in r.text
    reset_modes.google.mode = "ok"
    r = web.post("/admin/keys/google", data={"csrf_token": csrf_of(html), "api_key": GOOGLE_KEY})
    assert r.status_code == 200 and "result-valid" in r.text
    assert GOOGLE_KEY not in r.text  # stored masked
    assert re.search(
        r'<option value="gemini-2.5-flash" data-limit="1048576"\s*>', web.get("/").text
    )


def test_usage_and_status_render(web: httpx.Client) -> None:
    usage = web.get("/usage")
    assert usage.status_code == 200 and "<svg" in usage.text and "Tokens per day" in usage.text
    status = web.get("/status")
    assert status.status_code == 200 and "Services" in status.text and "GPU" in status.text
    part = web.get("/status?part=body")
    assert part.status_code == 200 and "<html" not in part.text and "Services" in part.text


def test_sign_out_ends_the_session(service: Service) -> None:
    web = sign_in(service)
    cookie = web.cookies.get("nova_session")
    html = web.get("/").text
    r = web.post("/signout", data={"csrf_token": csrf_of(html)})
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    with browser(service) as replay:  # the old cookie, replayed, is worth nothing
        replay.cookies.set("nova_session", cookie)
        assert replay.get("/").status_code == 303


def test_failed_sign_ins_are_throttled(tmp_path: Path, upstreams: Upstreams) -> None:
    env = {"NOVA_SIGNIN_FAILURES_ALLOWED": "3", "NOVA_SIGNIN_WINDOW_S": "60"}
    with run_service(tmp_path / "state", upstreams, env_overrides=env) as svc, browser(svc) as b:
        for _ in range(3):
            assert b.post("/signin", data={"token": "wrong-token-0123456789ab"}).status_code == 401
        r = b.post("/signin", data={"token": svc.token})  # even the right one, for now
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in r.text
        assert "wrong-token" not in svc.log_text() and svc.token not in svc.log_text()


def test_plots_without_prometheus_say_so_and_bad_views_are_refused(web: httpx.Client) -> None:
    r = web.get("/plots?view=status&span=1h")
    assert r.status_code == 200 and "<html" not in r.text
    assert "Time to first token" in r.text and "no Prometheus configured" in r.text
    whole = web.get("/plots?view=usage&span=1d&whole=1")
    assert whole.status_code == 200 and "<html" in whole.text and "Tokens generated" in whole.text
    assert web.get("/plots?view=secrets").status_code == 422
    assert web.get("/plots?view=status&span=1y").status_code == 422
