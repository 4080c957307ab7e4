"""Users from the settings database through the real gateway: roles, own gateway keys, settings
applied by the gateway, usage and budgets (issue 15).

Clients are the openai SDK (as the README shows) or plain httpx where a raw status is the
point. The Gemini stand-in records what reached "Google"; llama-server's ``/slots`` shows the
parameters of the task it last ran.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from .hostlib import INVENTORY_USER, Host, wait_healthy

TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{20,256}$")
FLUSH_WAIT_S = 15  # usage is sent every second; allow for a busy machine


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def admin_api(host: Host) -> httpx.Client:
    return host.settings()


def add_user(host: Host, name: str, role: str = "user") -> str:
    """A user made through the API by the admin; their settings token."""
    with admin_api(host) as client:
        response = client.post("/api/users", json={"name": name, "role": role})
    assert response.status_code == 201, response.text
    return response.json()["token"]


def as_user(host: Host, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=host.settings_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def gateway_key(host: Host, token: str) -> str:
    with as_user(host, token) as client:
        response = client.post("/api/gateway-key")
    assert response.status_code == 201, response.text
    key = response.json()["key"]
    assert key.startswith("nk-")
    return key


def save_settings(host: Host, token: str, **settings: object) -> dict:
    with as_user(host, token) as client:
        response = client.put("/api/user-settings/", json=settings)
    assert response.status_code == 200, response.text
    return response.json()


def sdk(host: Host, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{host.gateway_url}/v1", api_key=key, max_retries=0)


def raw_chat(host: Host, key: str, **body: object) -> httpx.Response:
    payload = {"model": "default", "messages": [{"role": "user", "content": "Say hi."}], **body}
    with httpx.Client(timeout=90) as client:
        return client.post(
            f"{host.gateway_url}/v1/chat/completions",
            json=payload,
            headers={"Authorization": f"Bearer {key}"},
        )


def usage_of(host: Host, token: str) -> dict:
    with as_user(host, token) as client:
        response = client.get("/api/usage", params={"days": 1})
    assert response.status_code == 200, response.text
    return response.json()


def wait_usage(host: Host, token: str, requests: int) -> dict:
    """The user's usage once it counts ``requests`` requests (it arrives in batches)."""
    deadline = time.monotonic() + FLUSH_WAIT_S
    while True:
        usage = usage_of(host, token)
        if usage["requests"] >= requests or time.monotonic() > deadline:
            return usage
        time.sleep(0.3)


def llama_params(host: Host, n_predict: int) -> dict | None:
    """The params of the latest task llama-server ran with this (distinctive) ``n_predict``,
    or None when a later task (the watchdog's probe) has since taken its slot."""
    headers = {"authorization": f"Bearer {host.llama_key}"}
    slots = httpx.get(f"{host.llama_url}/slots", headers=headers, timeout=10).json()
    ours = [s for s in slots if (s.get("params") or {}).get("n_predict") == n_predict]
    return max(ours, key=lambda s: s.get("id_task", -1))["params"] if ours else None


def params_reaching_llama(host: Host, send, n_predict: int):
    """``send()`` (a request that makes llama-server run ``n_predict`` tokens at most), and the
    params llama-server ran it with; sent again if the watchdog's probe reused the slot."""
    for _ in range(5):
        result = send()
        params = llama_params(host, n_predict)
        if params is not None:
            return result, params
    raise AssertionError(f"no llama-server slot kept a task with n_predict={n_predict}")


@pytest.fixture
def healthy(host: Host) -> Host:
    host.ensure_llama_running()
    wait_healthy(host)
    return host


# --- users and roles ------------------------------------------------------------------------


def test_inventory_user_exists_with_its_role_and_the_admin_cli_manages_users(healthy):
    host = healthy
    listing = host.ssh("nova-settings-admin user list")
    rows = {line.split()[0]: line.split()[1:] for line in listing.splitlines()[1:]}
    assert rows["admin"][0] == "admin"
    assert rows[INVENTORY_USER][0] == "user"

    name = unique("cli")
    token = host.ssh(f"nova-settings-admin user add {name}")
    assert TOKEN_RE.match(token), "user add prints the token and nothing else"
    with as_user(host, token) as client:
        assert client.get("/api/user-settings/").status_code == 200
    rotated = host.ssh(f"nova-settings-admin user token {name} --rotate")
    assert TOKEN_RE.match(rotated) and rotated != token
    with as_user(host, token) as client:
        assert client.get("/api/user-settings/").status_code == 401
    key = gateway_key(host, rotated)
    assert raw_chat(host, key, max_tokens=4).status_code == 200

    host.ssh(f"nova-settings-admin user disable {name}")
    with as_user(host, rotated) as client:
        assert client.get("/api/user-settings/").status_code == 401
    refused = raw_chat(host, key, max_tokens=4)
    assert refused.status_code == 401
    assert f"user '{name}' is disabled" in refused.json()["error"]["message"]
    host.ssh(f"nova-settings-admin user enable {name}")
    assert raw_chat(host, key, max_tokens=4).status_code == 200
    # Files the CLI (root) rewrote stay the service's: the API can still write.
    assert host.ssh("stat -c %U:%G /var/lib/nova-gateway-identity/identity.json") == (
        "nova-settings:nova-litellm"
    )


def test_only_admins_manage_users(healthy):
    user_token = add_user(healthy, unique("plain"))
    with as_user(healthy, user_token) as client:
        assert client.get("/api/users").status_code == 403
        assert client.post("/api/users", json={"name": unique("x")}).status_code == 403
        assert client.patch("/api/users/admin", json={"disabled": True}).status_code == 403
        assert client.get("/api/usage", params={"user": "*"}).status_code == 403
    with admin_api(healthy) as client:
        # The last enabled admin cannot lock everyone out.
        assert client.patch("/api/users/admin", json={"disabled": True}).status_code == 409
        assert client.patch("/api/users/nobody-here", json={"disabled": True}).status_code == 404


# --- settings applied by the gateway ----------------------------------------------------------


def test_each_user_is_served_by_their_own_model_and_parameters(with_key):
    host = with_key
    local_user, cloud_user = add_user(host, unique("local")), add_user(host, unique("cloud"))
    save_settings(
        host, local_user, llm_model=host.local_model, llm_temperature=0.25, llm_max_tokens=7
    )
    save_settings(
        host, cloud_user, llm_model=host.gemini_model, llm_temperature=1.35, llm_max_tokens=99
    )
    local_key, cloud_key = gateway_key(host, local_user), gateway_key(host, cloud_user)
    messages = [{"role": "user", "content": "Name a colour."}]

    for stream in (False, True):

        def local_request(stream: bool = stream) -> object:
            raw = sdk(host, local_key).chat.completions.with_raw_response.create(
                model="default", messages=messages, stream=stream
            )
            assert raw.headers["x-nova-model"] == host.local_model
            assert "x-nova-fallback-reason" not in raw.headers
            body = raw.parse()
            if stream:
                assert "".join(c.choices[0].delta.content or "" for c in body if c.choices)
            return body

        _, params = params_reaching_llama(host, local_request, 7)  # the saved max_tokens
        assert params["temperature"] == pytest.approx(0.25)

        host.gemini.reset()
        raw = sdk(host, cloud_key).chat.completions.with_raw_response.create(
            model="default", messages=messages, stream=stream
        )
        assert raw.headers["x-nova-model"] == host.gemini_model
        body = raw.parse()
        text = (
            "".join(c.choices[0].delta.content or "" for c in body if c.choices)
            if stream
            else body.choices[0].message.content
        )
        assert text.startswith("gemini-standin:")
        (sent,) = [r for r in host.gemini.logged() if r["method"] == "POST"]
        config = sent["body"]["generationConfig"]
        assert config["temperature"] == pytest.approx(1.35)
        # LiteLLM writes the proto field's snake_case JSON name (Google accepts both).
        assert config.get("maxOutputTokens", config.get("max_output_tokens")) == 99

    # Explicit values win over the saved ones; an explicit model works as before.
    def explicit_request() -> object:
        return sdk(host, cloud_key).chat.completions.with_raw_response.create(
            model=host.local_model, messages=messages, temperature=0.0, max_tokens=3
        )

    raw, params = params_reaching_llama(host, explicit_request, 3)
    assert raw.headers["x-nova-model"] == host.local_model
    assert params["temperature"] == 0.0


def test_rotation_revocation_and_disabling_apply_on_the_next_request(healthy):
    host = healthy
    name = unique("rotating")
    token = add_user(host, name)
    first = gateway_key(host, token)
    assert raw_chat(host, first, max_tokens=4).status_code == 200
    second = gateway_key(host, token)  # rotates
    refused = raw_chat(host, first, max_tokens=4)
    assert refused.status_code == 401
    assert "revoked or rotated" in refused.json()["error"]["message"]
    assert raw_chat(host, second, max_tokens=4).status_code == 200
    with as_user(host, token) as client:
        assert client.delete("/api/gateway-key").json() == {"revoked": True}
    assert raw_chat(host, second, max_tokens=4).status_code == 401
    third = gateway_key(host, token)
    with admin_api(host) as client:
        assert client.patch(f"/api/users/{name}", json={"disabled": True}).status_code == 200
    refused = raw_chat(host, third, max_tokens=4)
    assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]
    # A user's key reaches the model routes only, never LiteLLM's admin API.
    with admin_api(host) as client:
        client.patch(f"/api/users/{name}", json={"disabled": False})
    with httpx.Client(timeout=30) as client:
        denied = client.get(
            f"{host.gateway_url}/key/list", headers={"Authorization": f"Bearer {third}"}
        )
    assert denied.status_code == 403


def test_a_non_admin_cannot_store_or_delete_the_google_key(with_key):
    host = with_key
    token = add_user(host, unique("nokeys"))
    key_before = host.mtime(host.google_key_file)
    config_before = host.ssh(f"sha256sum {host.gateway_config}")
    gateway_before = host.unit("nova-litellm.service", "InvocationID")["InvocationID"]
    with as_user(host, token) as client:
        stored = client.post(
            "/api/user-settings/validate-api-key",
            json={"provider": "google", "api_key": host.gemini_key + "x", "store": True},
        )
        deleted = client.delete("/api/api-keys/google")
    assert stored.status_code == 403 and "admin" in stored.json()["detail"]
    assert deleted.status_code == 403
    time.sleep(2)  # a path-unit restart would have started by now
    assert host.mtime(host.google_key_file) == key_before
    assert host.ssh(f"sha256sum {host.gateway_config}") == config_before
    assert host.unit("nova-litellm.service", "InvocationID")["InvocationID"] == gateway_before


def test_a_saved_gemini_model_without_the_key_is_served_locally_with_the_reason(with_key):
    host = with_key
    token = add_user(host, unique("gemini-fan"))
    save_settings(host, token, llm_model=host.gemini_model, llm_temperature=0.7, llm_max_tokens=16)
    key = gateway_key(host, token)
    assert raw_chat(host, key).headers["x-nova-model"] == host.gemini_model
    try:
        before = host.unit("nova-litellm.service", "InvocationID")["InvocationID"]
        host.delete_google_key()
        host.wait_gateway_settled(after=before)
        answer = raw_chat(host, key)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-nova-model"] == host.local_model
        assert "no Google API key" in answer.headers["x-nova-fallback-reason"]
        with as_user(host, token) as client:
            saved = client.get("/api/user-settings/").json()
        assert saved["llm_model"] == host.gemini_model
        assert saved["llm_model_available"] is False
        assert "no Google API key" in saved["llm_model_unavailable_reason"]
    finally:
        host.ensure_google_key()


# --- usage and budgets ------------------------------------------------------------------------


def test_usage_equals_what_the_responses_reported(healthy):
    host = healthy
    token = add_user(host, unique("counted"))
    key = gateway_key(host, token)
    client = sdk(host, key)
    prompt = completion = 0
    for i in range(3):
        done = client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": f"Count to {i + 2}."}],
            max_tokens=8,
        )
        prompt += done.usage.prompt_tokens
        completion += done.usage.completion_tokens
    for i in range(3):
        chunks = list(
            client.chat.completions.create(
                model="default",
                messages=[{"role": "user", "content": f"Spell {i + 3}."}],
                max_tokens=8,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        (usage,) = [c.usage for c in chunks if c.usage is not None]
        prompt += usage.prompt_tokens
        completion += usage.completion_tokens
    # Refused requests record nothing.
    assert raw_chat(host, "nk-" + "A" * 43).status_code == 401
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "x"}], max_tokens=10**8
        )

    usage = wait_usage(host, token, 6)
    time.sleep(2)  # and nothing more arrives
    usage = usage_of(host, token)
    assert usage["requests"] == 6
    (row,) = usage["rows"]
    assert row["model"] == host.local_model and row["errors"] == 0 and row["cost"] == 0
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    with admin_api(host) as admin:
        everyone = admin.get("/api/usage", params={"user": "*", "days": 1}).json()
    assert any(r["user"] == row["user"] for r in everyone["rows"])


def test_a_user_over_budget_gets_429_and_others_are_served(healthy):
    host = healthy
    name = unique("thrifty")
    token, other = add_user(host, name), add_user(host, unique("other"))
    with admin_api(host) as client:
        assert client.patch(f"/api/users/{name}", json={"daily_token_budget": 5}).status_code == 200
    key, other_key = gateway_key(host, token), gateway_key(host, other)
    assert raw_chat(host, key, max_tokens=8).status_code == 200
    wait_usage(host, token, 1)
    refused = raw_chat(host, key, max_tokens=8)
    assert refused.status_code == 429, refused.text
    message = refused.json()["error"]["message"]
    assert "Daily token budget of 5 tokens" in message and "resets at" in message
    assert raw_chat(host, other_key, max_tokens=8).status_code == 200
    time.sleep(2)
    assert usage_of(host, token)["requests"] == 1  # the refused request recorded nothing
    with admin_api(host) as client:
        client.patch(f"/api/users/{name}", json={"daily_token_budget": None})
    assert raw_chat(host, key, max_tokens=8).status_code == 200


def test_bad_input_gets_a_clear_4xx_and_records_nothing(healthy):
    host = healthy
    token = add_user(host, unique("careless"))
    key = gateway_key(host, token)
    cases = {
        "short key": raw_chat(host, "nk-short"),
        "not issued": raw_chat(host, "nk-" + secrets.token_urlsafe(32)),
        "garbage": raw_chat(host, "definitely not a key"),
        "master key with default": raw_chat(host, host.gateway_key),
        "oversized max_tokens": raw_chat(host, key, max_tokens=10**9),
        "zero max_tokens": raw_chat(host, key, max_tokens=0),
    }
    for what, response in cases.items():
        assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
        assert response.json()["error"]["message"], what
    assert "master key has no user" in cases["master key with default"].json()["error"]["message"]
    assert "exceeds the limit" in cases["oversized max_tokens"].json()["error"]["message"]
    with admin_api(host) as client:
        assert client.post("/api/users", json={"name": "../etc"}).status_code == 422
        assert client.patch("/api/users/ghost", json={"role": "admin"}).status_code == 404
        assert client.patch("/api/users/admin", json={"daily_token_budget": -3}).status_code == 422
    time.sleep(2)
    assert usage_of(host, token)["requests"] == 0


@pytest.fixture
def counted_user(healthy) -> Iterator[tuple[Host, str, str]]:
    token = add_user(healthy, unique("crash"))
    yield healthy, token, gateway_key(healthy, token)
    wait_healthy(healthy)


def test_a_gateway_restart_loses_no_usage_and_a_crash_at_most_one_batch(counted_user):
    host, token, key = counted_user
    for _ in range(3):
        assert raw_chat(host, key, max_tokens=4).status_code == 200
    # A stop (SIGTERM): the workers send what they hold on the way out.
    host.ssh("systemctl restart nova-litellm")
    assert wait_usage(host, token, 3)["requests"] == 3
    wait_healthy(host)
    # A crash (SIGKILL) after a batch interval has passed loses nothing either: only the
    # requests of the last interval are at risk.
    for _ in range(2):
        assert raw_chat(host, key, max_tokens=4).status_code == 200
    time.sleep(3)
    host.ssh("systemctl kill -s KILL nova-litellm")
    assert wait_usage(host, token, 5)["requests"] == 5
