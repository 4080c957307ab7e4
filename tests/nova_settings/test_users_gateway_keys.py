"""Users, roles, gateway keys, usage and budgets in the settings service, and the identity
snapshot it publishes for the gateway (nova_common/gateway_identity.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from nova_common.gateway_identity import SnapshotReader, hash_key, utc_day

from .conftest import GOOGLE_KEY, MASTER_KEY, Service, run_service

VALIDATE = "/api/user-settings/validate-api-key"


@pytest.fixture(scope="module")
def svc(tmp_path_factory, upstreams, backend) -> Iterator[Service]:
    state = tmp_path_factory.mktemp("users") / "state"
    identity = state.parent / "identity" / "identity.json"
    env = {"NOVA_GATEWAY_IDENTITY": str(identity)}
    with run_service(state, upstreams, env_overrides=env, backend=backend) as s:
        yield s


def snapshot(svc: Service) -> dict:
    return json.loads((svc.state_dir.parent / "identity" / "identity.json").read_text())


def new_user(svc: Service, name: str, role: str = "user") -> str:
    with svc.client() as c:
        r = c.post("/api/users", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    assert r.json()["role"] == role and r.json()["has_gateway_key"] is False
    return r.json()["token"]


def test_non_admins_cannot_store_or_delete_provider_keys_and_nothing_changes(svc, upstreams):
    token = new_user(svc, "nonadmin")
    secret = svc.state_dir / "secrets" / "google_api_key"
    with svc.client() as admin:
        assert admin.post(
            VALIDATE, json={"provider": "google", "api_key": GOOGLE_KEY, "store": True}
        ).json()["stored"]
    before = secret.stat().st_mtime_ns
    upstreams.google.requests.clear()
    with svc.client(token) as c:
        r = c.post(VALIDATE, json={"provider": "google", "api_key": GOOGLE_KEY, "store": True})
        assert r.status_code == 403 and "admin" in r.json()["detail"]
        assert c.delete("/api/api-keys/google").status_code == 403
        # Validating without storing is anyone's.
        r = c.post(VALIDATE, json={"provider": "google", "api_key": GOOGLE_KEY})
        assert r.status_code == 200 and r.json()["stored"] is False
    assert secret.stat().st_mtime_ns == before
    assert len(upstreams.google.requests) == 1  # the refused store never asked Google


def test_user_management_is_for_admins_and_keeps_one_admin(svc):
    token = new_user(svc, "bystander")
    with svc.client(token) as c:
        assert c.get("/api/users").status_code == 403
        assert c.post("/api/users", json={"name": "sneaky"}).status_code == 403
        assert c.patch("/api/users/bystander", json={"role": "admin"}).status_code == 403
    with svc.client() as admin:
        assert admin.post("/api/users", json={"name": "bystander"}).status_code == 409
        assert admin.patch("/api/users/alice", json={"role": "user"}).status_code == 409
        assert admin.patch("/api/users/alice", json={"disabled": True}).status_code == 409
        assert admin.patch("/api/users/ghost", json={"disabled": True}).status_code == 404
        # Another admin does not let one demote or disable oneself through the API.
        assert admin.post("/api/users", json={"name": "deputy", "role": "admin"}).status_code == 201
        refused = admin.patch("/api/users/alice", json={"role": "user"})
        assert refused.status_code == 409 and "your own" in refused.json()["detail"]
        assert admin.patch("/api/users/alice", json={"disabled": True}).status_code == 409
        r = admin.patch("/api/users/bystander", json={"disabled": True})
        assert r.status_code == 200 and r.json()["disabled"] is True
    with svc.client(token) as c:
        assert c.get("/api/user-settings/").status_code == 401  # disabled: token refused
    with svc.client() as admin:
        names = {u["name"]: u for u in admin.get("/api/users").json()["users"]}
    assert names["alice"]["role"] == "admin" and names["bystander"]["disabled"] is True


def test_a_gateway_key_is_shown_once_stored_as_a_hash_and_published(svc):
    token = new_user(svc, "keyholder")
    with svc.client(token) as c:
        c.put(
            "/api/user-settings/",
            json={"llm_model": "gemini-2.5-flash", "llm_temperature": 1.1, "llm_max_tokens": 77},
        )
        r = c.post("/api/gateway-key")
    assert r.status_code == 201
    key = r.json()["key"]
    ((stored,),) = svc.sql('SELECT gateway_key_hash FROM "user" WHERE name = ?', ("keyholder",))
    assert stored == hash_key(key)
    text = (svc.state_dir.parent / "identity" / "identity.json").read_text()
    assert key not in text
    entry = snapshot(svc)["keys"][hash_key(key)]
    assert (entry["name"], entry["model"], entry["temperature"], entry["max_tokens"]) == (
        "keyholder",
        "gemini-2.5-flash",
        1.1,
        77,
    )
    reader = SnapshotReader(svc.state_dir.parent / "identity" / "identity.json")
    assert reader.lookup(key).name == "keyholder"
    with svc.client(token) as c:
        rotated = c.post("/api/gateway-key").json()["key"]
    assert reader.lookup(key) is None and reader.lookup(rotated).name == "keyholder"
    with svc.client(token) as c:
        assert c.delete("/api/gateway-key").json() == {"revoked": True}
        assert c.delete("/api/gateway-key").json() == {"revoked": False}
    assert reader.lookup(rotated) is None


def test_usage_comes_only_from_the_gateway_and_budgets_are_published(svc):
    token = new_user(svc, "spender")
    with svc.client(token) as c:
        key = c.post("/api/gateway-key").json()["key"]
    with svc.client() as admin:
        users = {u["name"]: u for u in admin.get("/api/users").json()["users"]}
        assert (
            admin.patch("/api/users/spender", json={"daily_token_budget": 100}).status_code == 200
        )
    ((user_id,),) = svc.sql('SELECT id FROM "user" WHERE name = ?', ("spender",))
    del users
    record = {
        "user_id": user_id,
        "day": utc_day(),
        "model": "m",
        "requests": 2,
        "errors": 0,
        "prompt_tokens": 30,
        "completion_tokens": 40,
        "cost": 0.5,
    }
    url = f"{svc.url}/internal/usage"
    # A settings token is not the gateway: refused, nothing recorded.
    with svc.client(token) as c:
        assert c.post(url, json={"records": [record]}).status_code == 401
    gateway = httpx.Client(headers={"Authorization": f"Bearer {MASTER_KEY}"}, trust_env=False)
    with gateway:
        assert gateway.post(url, json={"records": [{**record, "requests": -1}]}).status_code == 422
        assert gateway.post(url, json={"records": [record]}).status_code == 204
        assert snapshot(svc)["keys"][hash_key(key)]["over_budget_until"] is None
        assert gateway.post(url, json={"records": [record]}).status_code == 204
    assert snapshot(svc)["keys"][hash_key(key)]["over_budget_until"] is not None
    with svc.client(token) as c:
        usage = c.get("/api/usage").json()
        assert (usage["requests"], usage["total_tokens"], usage["cost"]) == (4, 140, 1.0)
        assert c.get("/api/usage", params={"user": "alice"}).status_code == 403
    with svc.client() as admin:
        theirs = admin.get("/api/usage", params={"user": "spender"}).json()
        assert theirs["total_tokens"] == 140
        assert admin.get("/api/usage", params={"user": "nobody"}).status_code == 404
        # Raising the budget lifts the block at once.
        admin.patch("/api/users/spender", json={"daily_token_budget": 1000})
    assert snapshot(svc)["keys"][hash_key(key)]["over_budget_until"] is None


def test_try_it_key_is_the_sessions_published_as_its_user_and_dies_at_sign_out(svc):
    """The settings page's Try it: a gateway key derived from the session cookie, only its hash
    stored; the snapshot admits it as the user's until the session ends."""
    from nova_settings.web.session import try_key

    token = new_user(svc, "tryit-user")
    web = httpx.Client(base_url=svc.url, timeout=20, trust_env=False)
    try:
        assert web.post("/signin", data={"token": token}).status_code == 303
        cookie = web.cookies["nova_session"]
        key = try_key(cookie)
        html = web.get("/try").text
        csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
        # The fake gateway has no chat route: the answer is an error, the key is admitted anyway.
        web.post("/try/stream", json={"message": "hi"}, headers={"x-csrf-token": csrf})
        keys = snapshot(svc)["keys"]
        assert keys[hash_key(key)]["name"] == "tryit-user"
        reader = SnapshotReader(svc.state_dir.parent / "identity" / "identity.json")
        assert reader.lookup(key).name == "tryit-user"
        stored = [v for row in svc.sql("SELECT * FROM web_session") for v in row]
        assert key not in stored and cookie not in stored
        assert web.post("/signout", data={"csrf_token": csrf}).status_code == 303
        assert hash_key(key) not in snapshot(svc)["keys"]
    finally:
        web.close()
