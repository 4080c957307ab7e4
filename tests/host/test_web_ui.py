"""The settings page in a real browser (Debian's Chromium driven by Playwright) against the real
host: sign in, choose a model, a refused value, a Google key that makes Gemini selectable, a
streamed chat that Usage then shows, CSRF, what a non-admin cannot do, sign out (issue 16).

A screenshot of each page goes to ``NOVA_ARTIFACTS_DIR`` (default ``build/artifacts``), under
``web-ui/``: the CI run keeps them. Playwright cannot download its own browsers here, so it
launches ``/usr/bin/chromium`` (``NOVA_CHROMIUM`` moves it) through ``executable_path``.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from .hostlib import ROOT, Host, wait_healthy

CHROMIUM = os.environ.get("NOVA_CHROMIUM", "/usr/bin/chromium")
# As the probe of this machine found: without the background-networking flags Chromium keeps
# trying hosts this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("NOVA_ARTIFACTS_DIR") or ROOT / "build" / "artifacts") / "web-ui"
USAGE_FLUSH_S = 20


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 900})
    yield ctx
    ctx.close()


def new_user(host: Host, role: str = "user") -> tuple[str, str]:
    name = unique("web")
    with host.settings() as client:
        response = client.post("/api/users", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    return name, response.json()["token"]


def settings_of(host: Host, token: str) -> dict:
    with httpx.Client(
        base_url=host.settings_url, headers={"authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        response = client.get("/api/user-settings/")
    assert response.status_code == 200, response.text
    return response.json()


def sign_in(page: Page, host: Host, token: str) -> None:
    page.goto(f"{host.settings_url}/")
    expect(page).to_have_url(re.compile(r"/signin\?next=/$"))
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My model")).to_be_visible()


def signed_in_new_user(host: Host, context: BrowserContext) -> tuple[Page, str]:
    """A page signed in as a new user (role user), and that user's settings token."""
    _name, token = new_user(host)
    page = context.new_page()
    sign_in(page, host, token)
    return page, token


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def csrf(page: Page) -> str:
    value = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert value
    return value


def test_sign_in_and_choose_a_model(host: Host, context: BrowserContext) -> None:
    wait_healthy(host)
    _name, token = new_user(host)
    page = context.new_page()
    page.goto(f"{host.settings_url}/")
    shot(page, "signin")
    sign_in(page, host, token)
    expect(page.get_by_text(re.compile(r"Context limit of this model: \d+ tokens"))).to_be_visible()
    page.get_by_label("Model").select_option(host.local_model)
    page.get_by_label("Temperature").fill("0.35")
    page.get_by_label("Max tokens").fill("200")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    saved = settings_of(host, token)
    assert (saved["llm_model"], saved["llm_temperature"], saved["llm_max_tokens"]) == (
        host.local_model,
        0.35,
        200,
    )
    shot(page, "model")


def test_each_local_model_is_listed_with_its_quantization_and_can_be_chosen(
    host: Host, context: BrowserContext
) -> None:
    wait_healthy(host)
    page, token = signed_in_new_user(host, context)
    q8 = "SmolLM2-135M-Instruct-Q8_0"
    for name, quantization in ((host.local_model, "Q4_1"), (q8, "Q8_0")):
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=name, exact=True))
        expect(row).to_contain_text(quantization)
        expect(row).to_contain_text(re.compile(r"\d+(\.\d)? MiB"))
        expect(row).to_contain_text(re.compile(r"loaded|loadable"))
    page.get_by_label("Model").select_option(q8)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    assert settings_of(host, token)["llm_model"] == q8
    shot(page, "models-two-quantizations")


def test_a_bad_temperature_shows_its_message_and_nothing_changes(
    host: Host, context: BrowserContext
) -> None:
    page, token = signed_in_new_user(host, context)
    before = settings_of(host, token)
    page.get_by_label("Temperature").fill("7")
    page.get_by_role("button", name="Save").click()
    message = page.locator("#llm_temperature-error")
    expect(message).to_contain_text("less than or equal to 2")
    expect(page.get_by_label("Temperature")).to_have_attribute("aria-invalid", "true")
    shot(page, "model-refused")
    assert settings_of(host, token) == before


def test_a_google_key_makes_gemini_selectable(host: Host, context: BrowserContext) -> None:
    wait_healthy(host)
    host.delete_google_key()
    host.wait_gateway_settled()
    page = context.new_page()
    sign_in(page, host, host.settings_token)  # the admin
    # Without a Google key the gateway does not offer Gemini: nothing to select.
    selectable = page.locator(f'option[value="{host.gemini_model}"]:not([disabled])')
    expect(selectable).to_have_count(0)
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("Google API key").fill("AIzaWrongKey0123456789abcdefghijklmnopq")
    page.get_by_role("button", name="Validate and store").first.click()
    expect(page.locator(".result-rejected")).to_contain_text("Nothing was stored")
    before = host.unit("nova-litellm.service", "InvocationID")["InvocationID"]
    page.get_by_label("Google API key").fill(host.gemini_key)
    page.get_by_role("button", name="Validate and store").first.click()
    expect(page.locator(".result-valid")).to_contain_text("valid and stored")
    assert host.gemini_key not in page.content()  # shown masked only
    shot(page, "admin")
    host.wait_gateway_settled(after=before)
    page.get_by_role("link", name="My model").click()
    expect(page.locator(f'option[value="{host.gemini_model}"]')).to_be_enabled()
    page.get_by_label("Model").select_option(host.gemini_model)
    expect(page.get_by_text("Context limit of this model: 1048576 tokens")).to_be_visible()


def test_chat_streams_a_reply_and_usage_shows_it(host: Host, context: BrowserContext) -> None:
    wait_healthy(host)
    host.ensure_llama_running()
    page, _token = signed_in_new_user(host, context)
    page.get_by_role("link", name="Try it").click()
    page.get_by_label("Message").fill("Say hello in five words.")
    with page.expect_response(re.compile(r"/try/stream$")) as streamed:
        page.get_by_role("button", name="Send").click()
    response = streamed.value
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-nova-model"] == host.local_model
    expect(page.locator("#reply-rate")).not_to_have_text("-", timeout=120_000)
    assert page.locator("#reply").inner_text().strip()
    expect(page.locator("#reply-model")).to_have_text(host.local_model)
    expect(page.locator("#reply-ttft")).to_have_text(re.compile(r"^\d+ ms$"))
    shot(page, "try")
    # The gateway reports usage every second; the page shows it once it has arrived.
    deadline = time.monotonic() + USAGE_FLUSH_S
    while True:
        page.goto(f"{host.settings_url}/usage")
        row = page.locator("tbody tr").filter(has_text=host.local_model)
        if row.count() or time.monotonic() > deadline:
            break
        time.sleep(1)
    expect(row.first).to_be_visible()
    cells = row.first.locator("td").all_inner_texts()
    assert int(cells[2]) >= 1 and int(cells[4]) > 0, cells  # requests, tokens
    expect(page.locator("svg.chart rect")).not_to_have_count(0)
    shot(page, "usage")


def test_a_write_without_the_csrf_token_is_refused(host: Host, context: BrowserContext) -> None:
    page, token = signed_in_new_user(host, context)
    before = settings_of(host, token)
    form = {"llm_model": host.local_model, "llm_temperature": "1.9", "llm_max_tokens": "32"}
    refused = page.request.post(f"{host.settings_url}/", form=form)
    assert refused.status == 403
    assert "security token" in refused.text()
    assert settings_of(host, token) == before
    accepted = page.request.post(f"{host.settings_url}/", form={**form, "csrf_token": csrf(page)})
    assert accepted.ok
    assert settings_of(host, token)["llm_temperature"] == 1.9


def test_a_non_admin_sees_no_admin_section_and_gets_403(
    host: Host, context: BrowserContext
) -> None:
    page, token = signed_in_new_user(host, context)
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    assert page.request.get(f"{host.settings_url}/admin").status == 403
    with host.settings() as client:
        users_before = client.get("/api/users").json()
    for path, form in (
        ("/admin/users", {"name": unique("sneaky")}),
        ("/admin/keys/google", {"api_key": host.gemini_key}),
        ("/admin/keys/google/delete", {}),
    ):
        answer = page.request.post(
            f"{host.settings_url}{path}", form={**form, "csrf_token": csrf(page)}
        )
        assert answer.status == 403, path
    with host.settings() as client:
        assert client.get("/api/users").json() == users_before
    with httpx.Client(base_url=host.settings_url, timeout=30) as anon:  # the JSON API agrees
        answer = anon.get("/api/users", headers={"authorization": f"Bearer {token}"})
        assert answer.status_code == 403


def test_the_other_pages_keyboard_and_phone_width(host: Host, browser: Browser) -> None:
    wait_healthy(host)
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = phone.new_page()
        page.goto(f"{host.settings_url}/signin")
        # The token field has the focus: type, Enter, signed in without a mouse.
        assert page.evaluate("document.activeElement.id") == "token"
        page.keyboard.type(host.settings_token)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="My model")).to_be_visible()
        page.keyboard.press("Tab")  # the first stop on every page is the skip link
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "My model"
        no_overflow = "document.documentElement.scrollWidth <= window.innerWidth + 1"
        assert page.evaluate(no_overflow), "the page scrolls sideways at phone width"
        shot(page, "model-phone")
        for path, heading, name in (
            ("/key", "My gateway key", "key"),
            ("/usage", "Usage", "usage-admin"),
            ("/status", "Status", "status"),
        ):
            page.goto(f"{host.settings_url}{path}")
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            assert page.evaluate(no_overflow), f"{path} scrolls sideways at phone width"
            shot(page, name)
        expect(page.get_by_text("nova-settings.service")).to_be_visible()
        expect(page.get_by_text(re.compile("llama-server: healthy"))).to_be_visible()
        checked = page.get_by_text(re.compile(r"^Checked at")).inner_text()
        # Status refreshes itself (every 10 s) without a reload.
        expect(page.get_by_text(re.compile(r"^Checked at"))).not_to_have_text(
            checked, timeout=25_000
        )
    finally:
        phone.close()


def test_sign_out_ends_the_session(host: Host, context: BrowserContext) -> None:
    page, _token = signed_in_new_user(host, context)
    cookie = next(c for c in context.cookies() if c["name"] == "nova_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{host.settings_url}/key")
    expect(page).to_have_url(re.compile(r"/signin\?next=/key$"))
    context.add_cookies([cookie])  # the old cookie, put back, is worth nothing
    assert page.request.get(f"{host.settings_url}/", max_redirects=0).status == 303
