"""POST /api/user-settings/validate-api-key, GET /api/api-keys, DELETE /api/api-keys/{p}."""

from __future__ import annotations

import stat

import pytest

from tests.standins.google_api import dead_url

from .conftest import GOOGLE_KEY, LANGSMITH_KEY, run_service

VALIDATE = "/api/user-settings/validate-api-key"
KEYS = {"google": GOOGLE_KEY, "langsmith": LANGSMITH_KEY}


def _secret(service, provider):
    return service.state_dir / "secrets" / f"{provider}_api_key"


@pytest.mark.parametrize("provider", ["google", "langsmith"])
def test_valid_key_is_checked_in_a_header_and_not_stored_unless_asked(
    service, client, upstreams, no_stored_keys, provider
):
    standin = getattr(upstreams, provider)
    standin.requests.clear()
    r = client.post(VALIDATE, json={"provider": provider, "api_key": KEYS[provider]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "valid"
    assert body["stored"] is False
    assert not _secret(service, provider).exists()
    (request,) = standin.requests
    assert KEYS[provider] not in request["path"]
    header = "x-goog-api-key" if provider == "google" else "x-api-key"
    assert {k.lower(): v for k, v in request["headers"].items()}[header] == KEYS[provider]
    if provider == "google":
        assert request["path"] == "/v1beta/models"
    else:
        assert request["path"] == "/api/v1/sessions?limit=1"


@pytest.mark.parametrize("provider", ["google", "langsmith"])
def test_valid_key_is_stored_0600_masked_and_deletable(service, client, no_stored_keys, provider):
    key = KEYS[provider]
    r = client.post(VALIDATE, json={"provider": provider, "api_key": key, "store": True})
    assert r.status_code == 200
    assert r.json()["stored"] is True
    assert r.json()["masked_key"] == f"{key[:4]}…{key[-4:]}"
    path = _secret(service, provider)
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    listed = {k["provider"]: k for k in client.get("/api/api-keys").json()["keys"]}
    assert listed[provider]["stored"] is True
    assert listed[provider]["masked_key"] == f"{key[:4]}…{key[-4:]}"
    assert key not in client.get("/api/api-keys").text
    r = client.delete(f"/api/api-keys/{provider}")
    assert r.status_code == 200
    assert not path.exists()
    listed = {k["provider"]: k for k in client.get("/api/api-keys").json()["keys"]}
    assert listed[provider]["stored"] is False


@pytest.mark.parametrize("provider", ["google", "langsmith"])
def test_wrong_key_is_rejected_and_not_stored(service, client, no_stored_keys, provider):
    wrong = "WRONGKEY-abcdefghijklmnop-1234"
    r = client.post(VALIDATE, json={"provider": provider, "api_key": wrong, "store": True})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "rejected"
    assert body["stored"] is False
    expected = "API key not valid" if provider == "google" else "Invalid token"
    assert expected in body["detail"]
    assert wrong not in r.text
    assert not _secret(service, provider).exists()


@pytest.mark.parametrize("provider", ["google", "langsmith"])
def test_slow_provider_is_unreachable_504(client, upstreams, reset_modes, no_stored_keys, provider):
    standin = getattr(upstreams, provider)
    standin.mode = "slow"
    standin.slow_s = 2.5  # the service's NOVA_PROVIDER_TIMEOUT_S is 1
    r = client.post(VALIDATE, json={"provider": provider, "api_key": KEYS[provider], "store": True})
    assert r.status_code == 504
    assert r.json()["status"] == "unreachable"
    assert r.json()["stored"] is False


@pytest.mark.parametrize("provider", ["google", "langsmith"])
def test_provider_5xx_is_unreachable_502(client, upstreams, reset_modes, no_stored_keys, provider):
    getattr(upstreams, provider).mode = "error"
    r = client.post(VALIDATE, json={"provider": provider, "api_key": KEYS[provider]})
    assert r.status_code == 502
    assert r.json()["status"] == "unreachable"


def test_dead_provider_is_unreachable_502(tmp_path, upstreams):
    dead = {"NOVA_GOOGLE_API_BASE": f"{dead_url()}/v1beta"}
    with run_service(tmp_path / "state", upstreams, env_overrides=dead) as svc:
        with svc.client() as c:
            r = c.post(VALIDATE, json={"provider": "google", "api_key": GOOGLE_KEY, "store": True})
        assert r.status_code == 502
        assert r.json()["status"] == "unreachable"
        assert "unreachable" in r.json()["detail"]
        assert not (svc.state_dir / "secrets" / "google_api_key").exists()


BAD_BODIES = [
    {"provider": "openai", "api_key": GOOGLE_KEY},
    {"provider": "google"},
    {"provider": "google", "api_key": GOOGLE_KEY, "store": "yes"},
    {"provider": "google", "api_key": GOOGLE_KEY, "extra": GOOGLE_KEY},
    {"provider": "google", "api_key": GOOGLE_KEY + "\r\nX-Evil: 1"},
    {"provider": "google", "api_key": "short"},
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_bad_validate_bodies_are_refused_without_echo(client, no_stored_keys, body):
    r = client.post(VALIDATE, json=body)
    assert r.status_code == 422
    assert GOOGLE_KEY not in r.text


def test_unknown_provider_delete_is_422(client):
    assert client.delete("/api/api-keys/openai").status_code == 422


def test_keys_and_tokens_never_reach_the_log(service, client, no_stored_keys):
    for provider, key in KEYS.items():
        client.post(VALIDATE, json={"provider": provider, "api_key": key, "store": True})
        client.post(VALIDATE, json={"provider": provider, "api_key": key + "x"})
    client.get("/api/api-keys")
    text = service.log_text()
    assert "validate-api-key 200" in text
    for secret in (*KEYS.values(), service.token):
        assert secret not in text
        assert secret[4:-4] not in text
