"""GET /api/models (discovery through the gateway) and GET /api/system/status."""

from __future__ import annotations

from .conftest import GOOGLE_KEY, LOCAL_CTX, LOCAL_MODEL


def _models(client):
    r = client.get("/api/models")
    assert r.status_code == 200, r.text
    return r.json()


def test_models_come_from_the_gateway(client, upstreams, no_stored_keys):
    body = _models(client)
    assert body["gateway"] == {"reachable": True, "error": None}
    models = {m["id"]: m for m in body["models"]}
    assert list(models) == upstreams.gateway.model_ids
    local = models[LOCAL_MODEL]
    assert local["kind"] == "local"
    assert local["available"] is True
    assert local["context"] == LOCAL_CTX
    gemini = models["gemini-2.5-flash"]
    assert gemini["kind"] == "cloud"
    assert gemini["available"] is False
    assert "no validated google API key" in gemini["reason"]
    assert gemini["context"] == 1048576
    assert models["mystery-model"]["available"] is False


def test_gateway_models_follow_the_gateway(client, upstreams):
    upstreams.gateway.model_ids.append("gemini-2.5-pro")
    try:
        ids = [m["id"] for m in _models(client)["models"]]
        assert "gemini-2.5-pro" in ids
    finally:
        upstreams.gateway.model_ids.remove("gemini-2.5-pro")


def test_cloud_model_available_with_a_stored_google_key(service, client, no_stored_keys):
    r = client.post(
        "/api/user-settings/validate-api-key",
        json={"provider": "google", "api_key": GOOGLE_KEY, "store": True},
    )
    assert r.json()["stored"] is True
    gemini = {m["id"]: m for m in _models(client)["models"]}["gemini-2.5-flash"]
    assert gemini["available"] is True
    # Now it can be chosen, with a max_tokens up to its configured context.
    r = client.patch(
        "/api/user-settings/", json={"llm_model": "gemini-2.5-flash", "llm_max_tokens": 1048576}
    )
    assert r.status_code == 200, r.text
    r = client.patch("/api/user-settings/", json={"llm_max_tokens": 1048577})
    assert r.status_code == 422
    client.delete("/api/api-keys/google")
    gemini = {m["id"]: m for m in _models(client)["models"]}["gemini-2.5-flash"]
    assert gemini["available"] is False
    client.put(
        "/api/user-settings/",
        json={"llm_model": LOCAL_MODEL, "llm_temperature": 0.6, "llm_max_tokens": 2048},
    )


def test_local_model_unavailable_while_llama_loads(client, reset_modes):
    reset_modes.llama.mode = "loading"
    local = {m["id"]: m for m in _models(client)["models"]}[LOCAL_MODEL]
    assert local["available"] is False
    assert "503" in local["reason"]
    r = client.patch("/api/user-settings/", json={"llm_model": LOCAL_MODEL})
    assert r.status_code == 422


def test_gateway_down_is_said_plainly(client, reset_modes):
    reset_modes.gateway.mode = "error"
    body = _models(client)
    assert body["models"] == []
    assert body["gateway"]["reachable"] is False
    assert "500" in body["gateway"]["error"]


def test_system_status_without_gpu_or_systemd(client):
    r = client.get("/api/system/status")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["gpu"]["available"] is False
    assert body["gpu"]["reason"]
    units = {u["unit"]: u for u in body["units"]}
    assert set(units) == {
        "nova-llama-server.service",
        "nova-litellm.service",
        "nova-settings.service",
        "nova-llm.target",
    }
    for unit in units.values():
        # Either real systemd state, or "unknown" with a reason on a box without systemd.
        assert unit["active_state"] != "unknown" or unit["reason"]
    assert body["llama_server"]["healthy"] is True
    assert body["gateway"]["healthy"] is True
