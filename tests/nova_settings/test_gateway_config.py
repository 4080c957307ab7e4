"""A Google key stored, replaced or removed through the API re-renders the gateway config.

The service renders the template it ships (nova_settings/gateway/litellm-config.yaml.j2) with
a context file like the one Ansible writes. The file is rewritten only when its content
changes: the systemd path unit on the host restarts the gateway exactly then.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import GOOGLE_KEY, LOCAL_MODEL, run_service


@pytest.fixture(scope="module")
def gw_service(tmp_path_factory, upstreams):
    base = tmp_path_factory.mktemp("gw")
    context = base / "context.json"
    context.write_text(
        json.dumps(
            {
                "local_model": {"name": LOCAL_MODEL, "api_bases": ["http://127.0.0.1:8080/v1"]},
                "gemini_models": ["gemini-2.5-flash"],
                "gemini_api_base": "",
                "request_timeout_s": 60,
                "num_retries": 0,
                "allowed_fails": 1,
                "cooldown_time_s": 30,
            }
        )
    )
    env = {"NOVA_GATEWAY_CONTEXT": str(context)}
    with run_service(base / "state", upstreams, env_overrides=env) as svc:
        yield svc


def config_path(svc) -> Path:
    return svc.state_dir / "gateway" / "config.yaml"


def model_names(svc) -> list[str]:
    return [m["model_name"] for m in yaml.safe_load(config_path(svc).read_text())["model_list"]]


def test_admin_renders_local_only_without_a_key(gw_service):
    with gw_service.client() as c:
        c.delete("/api/api-keys/google")
    first = gw_service.admin("render-gateway-config")
    assert model_names(gw_service) == [LOCAL_MODEL]
    assert gw_service.admin("render-gateway-config")["changed"] is False
    assert first["path"] == str(config_path(gw_service))
    assert config_path(gw_service).stat().st_mode & 0o777 == 0o600


def test_storing_replacing_and_removing_a_key_rerenders_only_on_change(gw_service):
    with gw_service.client() as c:
        c.delete("/api/api-keys/google")
        gw_service.admin("render-gateway-config")
        before = config_path(gw_service).stat().st_mtime_ns

        r = c.post(
            "/api/user-settings/validate-api-key",
            json={"provider": "google", "api_key": GOOGLE_KEY, "store": True},
        )
        assert r.status_code == 200 and r.json()["stored"] is True
        assert model_names(gw_service) == [LOCAL_MODEL, "gemini-2.5-flash"]
        config = yaml.safe_load(config_path(gw_service).read_text())
        fallbacks = {k: v for f in config["litellm_settings"]["fallbacks"] for k, v in f.items()}
        assert fallbacks == {LOCAL_MODEL: ["gemini-2.5-flash"], "gemini-2.5-flash": [LOCAL_MODEL]}
        # The key itself never lands in the config: LiteLLM reads it from its environment.
        assert GOOGLE_KEY not in config_path(gw_service).read_text()
        stored = config_path(gw_service).stat().st_mtime_ns
        assert stored != before
        key_file = gw_service.state_dir / "secrets" / "google_api_key"
        key_mtime = key_file.stat().st_mtime_ns

        # The same key again: neither the key file nor the config is touched.
        r = c.post(
            "/api/user-settings/validate-api-key",
            json={"provider": "google", "api_key": GOOGLE_KEY, "store": True},
        )
        assert r.status_code == 200
        assert config_path(gw_service).stat().st_mtime_ns == stored
        assert key_file.stat().st_mtime_ns == key_mtime

        # A rejected key changes nothing.
        r = c.post(
            "/api/user-settings/validate-api-key",
            json={"provider": "google", "api_key": "AIzaWRONGKEY000000000000000", "store": True},
        )
        assert r.json()["status"] == "rejected"
        assert config_path(gw_service).stat().st_mtime_ns == stored
        assert key_file.stat().st_mtime_ns == key_mtime

        assert c.delete("/api/api-keys/google").status_code == 200
        assert model_names(gw_service) == [LOCAL_MODEL]
