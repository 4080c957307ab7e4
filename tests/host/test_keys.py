"""The Google key flow on the real host: a key stored through the settings API re-renders the
gateway config, the path unit restarts nova-litellm, and Gemini appears (and goes away again
when the key is deleted). Storing the same key again, or a key Google rejects, changes nothing.
"""

from __future__ import annotations

import time

import pytest

from .hostlib import Host, chat, served_by

pytestmark = pytest.mark.host


def _gemini_listed(host: Host) -> tuple[bool, bool]:
    """(in the gateway's /v1/models, available in the settings service's /api/models)."""
    in_gateway = host.gemini_model in host.gateway_models()
    models = host.settings_models()
    assert models["_gateway"]["reachable"], models["_gateway"]
    entry = models.get(host.gemini_model)
    return in_gateway, bool(entry and entry["available"])


def _litellm(host: Host) -> dict[str, str]:
    return host.unit("nova-litellm.service", "InvocationID", "MainPID", "NRestarts")


def test_key_store_same_invalid_delete(host: Host, gemini) -> None:
    host.ensure_llama_running()
    # Start from no key (a previous session may have left one on a kept host).
    if host.ssh(f"test -e {host.google_key_file} && echo yes", check=False):
        before = _litellm(host)["InvocationID"]
        host.delete_google_key()
        host.wait_gateway_settled(after=before)
    host.wait_gateway_settled()

    # 1. No key: no Gemini anywhere.
    assert _gemini_listed(host) == (False, False)
    assert host.ssh(f"grep -c gemini {host.gateway_config} || true") == "0"

    # 2. Store the stand-in's valid key: config re-rendered, gateway restarted, Gemini served.
    before = _litellm(host)
    start = time.monotonic()
    result = host.store_google_key(host.gemini_key)
    assert result["status_code"] == 200 and result["status"] == "valid" and result["stored"]
    assert host.gemini_key not in str(result)  # only the masked form comes back
    waited = host.wait_gateway_settled(after=before["InvocationID"])
    took = time.monotonic() - start
    print(f"\n[keys] valid key stored -> gateway serving again after {took:.1f} s", flush=True)
    assert took < 60
    assert _gemini_listed(host) == (True, True)
    assert gemini.logged("GET", "/v1beta/models")  # the settings service validated with it
    with host.gateway() as client:
        answer = chat(client, host.gemini_model, "ping from the host tests")
    assert served_by(answer) == "gemini", answer
    assert "ping from the host tests" in answer.text
    assert answer.fallbacks == 0
    generated = gemini.logged("POST", ":generateContent")
    assert generated and generated[-1]["key_present"]
    restarts = int(_litellm(host)["NRestarts"]) - int(before["NRestarts"] or 0)
    print(f"[keys] nova-litellm restarts for one key store: waited {waited:.1f} s", flush=True)
    del restarts

    # 3. The same key again: nothing is rewritten, the gateway is not restarted.
    settled = _litellm(host)
    config_mtime = host.mtime(host.gateway_config)
    key_mtime = host.mtime(host.google_key_file)
    result = host.store_google_key(host.gemini_key)
    assert result["status"] == "valid" and result["stored"], result
    time.sleep(5)
    after = _litellm(host)
    assert after["InvocationID"] == settled["InvocationID"]
    assert after["MainPID"] == settled["MainPID"]
    assert host.mtime(host.gateway_config) == config_mtime
    assert host.mtime(host.google_key_file) == key_mtime
    print("[keys] same key again: no restart, nothing rewritten", flush=True)

    # 4. A key Google rejects: nothing stored, nothing restarted.
    result = host.store_google_key("AIzaWrongKey" + "x" * 27)
    assert result["status_code"] == 200 and result["status"] == "rejected"
    assert not result["stored"]
    time.sleep(5)
    after = _litellm(host)
    assert after["InvocationID"] == settled["InvocationID"]
    assert after["MainPID"] == settled["MainPID"]
    assert host.mtime(host.gateway_config) == config_mtime
    assert host.mtime(host.google_key_file) == key_mtime
    assert _gemini_listed(host) == (True, True)
    print("[keys] rejected key: nothing stored, no restart", flush=True)

    # 5. Delete the key: Gemini goes away again.
    start = time.monotonic()
    assert host.delete_google_key() == {
        "provider": "google",
        "stored": False,
        "masked_key": None,
        "updated_at": None,
    }
    host.wait_gateway_settled(after=settled["InvocationID"])
    print(f"[keys] key deleted -> gateway restarted in {time.monotonic() - start:.1f} s")
    assert _gemini_listed(host) == (False, False)
    assert host.ssh(f"grep -c gemini {host.gateway_config} || true") == "0"
    with host.gateway() as client:
        answer = chat(client, host.gemini_model)
    assert not answer.ok and answer.status in (400, 404), answer
    with host.gateway() as client:
        assert served_by(chat(client, host.local_model)) == "local"
