"""GET / PUT / PATCH /api/user-settings/: defaults, validation, and refusals that change nothing."""

from __future__ import annotations

import json
import socket

import pytest

from .conftest import LOCAL_CTX, LOCAL_MODEL

INJECTION = "'; DROP TABLE user_settings;--"


def test_defaults_are_seeded(service, tmp_path):
    service.admin("ensure-user", "dave", "--token-file", str(tmp_path / "dave"))
    with service.client((tmp_path / "dave").read_text().strip()) as c:
        body = c.get("/api/user-settings/").json()
    assert body["llm_model"] == LOCAL_MODEL
    assert body["llm_temperature"] == 0.6
    assert body["llm_max_tokens"] == 2048


def test_a_user_without_a_settings_row_gets_the_defaults_stored(service, tmp_path):
    """A user row with no settings row (created by hand, or by an older release): the first
    read seeds and stores the defaults, and later reads and writes see that row."""
    service.admin("ensure-user", "erin", "--token-file", str(tmp_path / "erin"))
    service.sql(
        'DELETE FROM user_settings WHERE user_id = (SELECT id FROM "user" WHERE name = ?)',
        ("erin",),
    )
    with service.client((tmp_path / "erin").read_text().strip()) as c:
        first = c.get("/api/user-settings/")
        assert first.status_code == 200, first.text
        assert first.json()["llm_temperature"] == 0.6
        assert service.db_row("erin") == (LOCAL_MODEL, 0.6, 2048, 0)
        assert c.get("/api/user-settings/").json() == first.json()
        assert c.patch("/api/user-settings/", json={"llm_temperature": 1.5}).status_code == 200
        assert c.get("/api/user-settings/").json()["llm_temperature"] == 1.5


def test_a_change_written_by_another_process_is_read_at_once(service, client, fresh_settings):
    """The service serves the settings read from memory between commits
    (fast_read.UserLookup): a row changed behind its back (here by this test process's own
    connection) must still be what the very next read returns. (Postgres has no such cache:
    the same must hold all the same.)"""
    for step in range(1, 21):
        assert client.get("/api/user-settings/").status_code == 200  # cached now
        service.sql(
            "UPDATE user_settings SET llm_temperature = ?, revision = revision + 1 "
            'WHERE user_id = (SELECT id FROM "user" WHERE name = ?)',
            (step / 10, "alice"),
        )
        assert client.get("/api/user-settings/").json()["llm_temperature"] == step / 10


def test_put_and_patch(client, fresh_settings):
    r = client.patch("/api/user-settings/", json={"llm_temperature": 0})
    assert r.status_code == 200, r.text
    assert r.json()["llm_temperature"] == 0
    assert r.json()["llm_max_tokens"] == 2048
    r = client.patch("/api/user-settings/", json={"llm_max_tokens": LOCAL_CTX})
    assert r.status_code == 200, r.text
    r = client.put(
        "/api/user-settings/",
        json={"llm_model": LOCAL_MODEL, "llm_temperature": 2, "llm_max_tokens": 1},
    )
    assert r.status_code == 200, r.text
    assert client.get("/api/user-settings/").json()["llm_temperature"] == 2


BAD_PATCHES = [
    ({"llm_temperature": 2.01}, "llm_temperature"),
    ({"llm_temperature": -0.1}, "llm_temperature"),
    ({"llm_temperature": "0.5"}, "llm_temperature"),
    ({"llm_temperature": True}, "llm_temperature"),
    ({"llm_temperature": None}, "llm_temperature"),
    ({"llm_temperature": [1]}, "llm_temperature"),
    ({"llm_max_tokens": 0}, "llm_max_tokens"),
    ({"llm_max_tokens": -5}, "llm_max_tokens"),
    ({"llm_max_tokens": 1.5}, "llm_max_tokens"),
    ({"llm_max_tokens": "100"}, "llm_max_tokens"),
    ({"llm_max_tokens": LOCAL_CTX + 1}, "llm_max_tokens"),
    ({"llm_max_tokens": 10**40}, "llm_max_tokens"),
    ({"llm_model": INJECTION}, "llm_model"),
    ({"llm_model": "no-such-model"}, "llm_model"),
    ({"llm_model": "mystery-model"}, "llm_model"),  # listed by the gateway, not available
    ({"llm_model": "gemini-2.5-flash"}, "llm_model"),  # no google key stored
    ({"llm_model": ""}, "llm_model"),
    ({"llm_model": 42}, "llm_model"),
    ({"llm_model": "x" * 300}, "llm_model"),
    ({"llm_temperature": 1.0, "colour": "blue"}, "colour"),
    ({"user_id": 2}, "user_id"),
    ({}, None),
]


def _row_and_body(service, client):
    return service.db_row(), client.get("/api/user-settings/").json()


@pytest.mark.parametrize(("body", "field"), BAD_PATCHES, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_bad_input_is_refused_and_changes_nothing(
    service, client, fresh_settings, no_stored_keys, method, body, field
):
    if method == "PUT":
        full = {"llm_model": LOCAL_MODEL, "llm_temperature": 0.7, "llm_max_tokens": 100}
        # A bad field inside an otherwise whole object; the empty body stays empty (PUT
        # needs every field).
        body = {**full, **body} if body else {}
    before = _row_and_body(service, client)
    r = client.request(method, "/api/user-settings/", json=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.status_code == 422
    if field is not None:
        locs = [err["loc"] for err in r.json()["detail"]]
        assert any(field in loc for loc in locs), r.text
    assert all("input" not in err for err in r.json()["detail"] if isinstance(err, dict))
    assert _row_and_body(service, client) == before
    assert service.db_row() == (LOCAL_MODEL, 0.6, 2048, fresh_settings["revision"])


def test_nan_and_garbage_json_are_refused(service, client, fresh_settings):
    before = service.db_row()
    for raw in (
        b'{"llm_temperature": NaN}',
        b'{"llm_temperature": Infinity}',
        b"{not json",
        b'["llm_temperature", 1]',
        b'"x"',
    ):
        r = client.patch(
            "/api/user-settings/", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, (raw, r.text)
    assert service.db_row() == before


def test_huge_body_is_refused_with_413(service, client, fresh_settings):
    before = service.db_row()
    big = {"llm_temperature": 1.0, "llm_model": "a" * 20000}
    r = client.patch("/api/user-settings/", json=big)
    assert r.status_code == 413
    assert "too large" in r.json()["detail"]

    # Also when the body arrives chunked, without a Content-Length to judge by.
    def chunks():
        yield b'{"llm_model": "'
        for _ in range(40):
            yield b"a" * 1024
        yield b'"}'

    r = client.patch(
        "/api/user-settings/", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert service.db_row() == before


def test_lying_content_length_is_refused(service, fresh_settings):
    """Content-Length says small, the body is huge: judged by the bytes actually read."""
    before = service.db_row()
    host, port = service.url.removeprefix("http://").split(":")
    payload = json.dumps({"llm_model": "a" * 30000}).encode()
    request = (
        f"PATCH /api/user-settings/ HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {service.token}\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    body = (
        b"".join(
            f"{len(payload[i : i + 4096]):x}\r\n".encode() + payload[i : i + 4096] + b"\r\n"
            for i in range(0, len(payload), 4096)
        )
        + b"0\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request + body)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")
    assert service.db_row() == before


def test_injection_string_leaves_the_table(service, client, fresh_settings):
    r = client.patch("/api/user-settings/", json={"llm_model": INJECTION})
    assert r.status_code == 422
    assert client.get("/api/user-settings/").status_code == 200
    assert service.db_row()[0] == LOCAL_MODEL


def test_model_change_needs_a_reachable_gateway(service, client, fresh_settings, reset_modes):
    reset_modes.gateway.mode = "error"
    before = service.db_row()
    r = client.patch("/api/user-settings/", json={"llm_model": LOCAL_MODEL})
    assert r.status_code == 503
    assert "gateway" in r.json()["detail"]
    # Temperature alone does not need discovery.
    assert client.patch("/api/user-settings/", json={"llm_temperature": 1.2}).status_code == 200
    assert service.db_row()[1] == 1.2
    assert service.db_row()[0] == before[0]
