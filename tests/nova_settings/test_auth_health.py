"""/health, the OpenAPI docs, and bearer-token auth on everything else."""

from __future__ import annotations

import httpx
import pytest

PROTECTED = [
    ("GET", "/api/user-settings/"),
    ("PUT", "/api/user-settings/"),
    ("PATCH", "/api/user-settings/"),
    ("POST", "/api/user-settings/validate-api-key"),
    ("GET", "/api/api-keys"),
    ("DELETE", "/api/api-keys/google"),
    ("GET", "/api/models"),
    ("GET", "/api/system/status"),
]


def test_health_is_open_and_cheap(service):
    r = httpx.get(f"{service.url}/health", trust_env=False)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_docs_are_served(service):
    assert httpx.get(f"{service.url}/docs", trust_env=False).status_code == 200
    spec = httpx.get(f"{service.url}/openapi.json", trust_env=False).json()
    assert "/api/user-settings/" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token-0123456789abcdefghij",
        "Bearer",
        "Basic YWxpY2U6eA==",
        "Bearer ' OR 1=1 --",
    ],
    ids=["missing", "wrong", "empty", "basic", "sqli"],
)
def test_missing_or_wrong_token_gets_401_and_nothing_else(service, method, path, authorization):
    headers = {"authorization": authorization} if authorization else {}
    body = {"llm_temperature": 1.0} if method in ("PUT", "PATCH", "POST") else None
    r = httpx.request(method, f"{service.url}{path}", headers=headers, json=body, trust_env=False)
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["www-authenticate"] == "Bearer"


def test_token_of_other_user_reaches_only_its_own_settings(service, tmp_path):
    assert service.admin("ensure-user", "bob", "--token-file", str(tmp_path / "bob"))["changed"]
    bob_token = (tmp_path / "bob").read_text().strip()
    with service.client(bob_token) as bob, service.client() as alice:
        assert bob.patch("/api/user-settings/", json={"llm_temperature": 1.9}).status_code == 200
        assert bob.get("/api/user-settings/").json()["llm_temperature"] == 1.9
        assert alice.get("/api/user-settings/").json()["llm_temperature"] != 1.9


def test_rotated_token_is_revoked_at_once(service, tmp_path):
    token_file = tmp_path / "carol"
    service.admin("ensure-user", "carol", "--token-file", str(token_file))
    old = token_file.read_text().strip()
    with service.client(old) as c:
        assert c.get("/api/user-settings/").status_code == 200
    token_file.write_text("not-the-token\n")
    assert service.admin("ensure-user", "carol", "--token-file", str(token_file)) == {
        "changed": True
    }
    new = token_file.read_text().strip()
    assert new != old
    with service.client(old) as c:
        assert c.get("/api/user-settings/").status_code == 401
    with service.client(new) as c:
        assert c.get("/api/user-settings/").status_code == 200


def test_access_log_has_one_line_per_request_and_no_secrets(service, client):
    client.get("/api/user-settings/")
    lines = [line for line in service.log_text().splitlines() if "nova_settings.access" in line]
    assert any(
        " GET /api/user-settings/ 200 " in line and line.endswith(" alice") for line in lines
    )
    assert any(" GET /health 200 " in line and line.endswith(" -") for line in lines)
    assert service.token not in service.log_text()
