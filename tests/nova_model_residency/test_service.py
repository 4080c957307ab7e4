"""nova-model-residency as a process (its HTTP side and start-up), and the settings service's
discovery reading it, with real GGUF files and no model loaded: the answers that need no
llama-server (status, auth, refusals, a load that fails). Loading, eviction and crashes with
real llama-servers are in tests/host/test_local_models.py."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nova_common.ports import free_port
from nova_settings import discovery
from nova_settings.core.config import Config
from tests.fixtures.make_tiny_gguf import N_CTX_TRAIN, make_tiny_gguf

KEY = "nl-test-key"
# A listener on the port of model "squatted".
SQUATTED = socket.create_server(("127.0.0.1", 0))


@pytest.fixture(scope="module")
def residency(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("residency")
    model = tmp / "tiny.gguf"
    make_tiny_gguf(model)
    (tmp / "key").write_text(KEY + "\n")
    port = free_port()
    config = {
        "port": port,
        "api_key_file": str(tmp / "key"),
        "budget_mib": 300,
        "default_model": "tiny",
        "load_timeout_s": 5,
        "models": [
            # Its "llama-server" exits at once: a load that fails.
            {"name": "tiny", "path": str(model), "quantization": "F32",
             "command": ["false"], "port": free_port()},
            # Its port is taken (by this test's listener): never its own /health.
            {"name": "squatted", "path": str(model), "command": ["sleep", "30"],
             "port": SQUATTED.getsockname()[1]},
            # Needs more than the whole budget (--ctx-size 10^7): can never be loaded.
            {"name": "huge", "path": str(model), "quantization": "F32",
             "command": ["false", "--ctx-size", "10000000"], "port": free_port()},
        ],
    }  # fmt: skip
    (tmp / "config.json").write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nova_model_residency", "--config", str(tmp / "config.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError(proc.communicate()[0])
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def get(url: str, path: str, key: str | None = KEY) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{url}{path}", headers=headers, timeout=10)


def post(url: str, path: str, body: object, key: str | None = KEY) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}{path}", headers=headers, json=body, timeout=30)


def test_every_route_but_health_needs_the_key(residency: str) -> None:
    assert get(residency, "/health", key=None).status_code == 200
    for path in ("/residency", "/v1/models", "/metrics", "/props", "/slots"):
        assert get(residency, path, key=None).status_code == 401, path
        assert get(residency, path, key="nl-wrong").status_code == 401, path
    refused = post(residency, "/v1/chat/completions", {"model": "tiny"}, key=None)
    assert refused.status_code == 401


def test_status_reports_each_model_from_its_gguf(residency: str) -> None:
    status = get(residency, "/residency").json()
    assert status["budget_mib"] == 300 and status["default_model"] == "tiny"
    models = {m["name"]: m for m in status["models"]}
    tiny, huge = models["tiny"], models["huge"]
    assert tiny["state"] == huge["state"] == "unloaded"
    assert tiny["context_length"] == N_CTX_TRAIN
    assert tiny["file_size"] > 0 and tiny["quantization"] == "F32"
    assert tiny["fits"] is True and huge["fits"] is False
    listed = get(residency, "/v1/models").json()["data"]
    assert [m["id"] for m in listed] == ["tiny", "squatted", "huge"]
    assert {m["status"] for m in listed} == {"unloaded"}


def test_bad_requests_get_a_clear_4xx_and_change_nothing(residency: str) -> None:
    unknown = post(residency, "/v1/chat/completions", {"model": "nope"})
    assert unknown.status_code == 404
    assert "not served here (served: tiny, squatted, huge)" in unknown.json()["error"]["message"]
    not_json = httpx.post(
        f"{residency}/v1/chat/completions",
        headers={"authorization": f"Bearer {KEY}"},
        content=b"{not json",
        timeout=10,
    )
    assert not_json.status_code == 400
    assert post(residency, "/models/unload", {"nothing": 1}).status_code == 400
    assert post(residency, "/models/load", {"model": "nope"}).status_code == 404
    too_big = post(residency, "/v1/chat/completions", {"model": "huge"})
    assert too_big.status_code == 507
    assert "needs" in too_big.json()["error"]["message"]
    assert get(residency, "/residency").json()["in_use_mib"] == 0


def test_a_load_that_fails_is_a_503_with_the_reason_and_discovery_says_so(residency: str) -> None:
    failed = post(residency, "/v1/chat/completions", {"model": "tiny", "messages": []})
    assert failed.status_code == 503
    assert "exited with status 1 while loading" in failed.json()["error"]["message"]
    tiny = {m["name"]: m for m in get(residency, "/residency").json()["models"]}["tiny"]
    assert tiny["state"] == "unloaded" and "exited with status 1" in tiny["last_error"]
    # The settings service's discovery, reading the same process.
    key_file = Path(residency.replace("http://", "/tmp/").replace(":", "-") + ".key")
    key_file.write_text(KEY)
    try:
        config = Config(
            NOVA_LLAMA_URL=residency,
            NOVA_LLAMA_API_KEY_FILE=str(key_file),
            NOVA_LOCAL_MODEL="tiny",
            NOVA_LOCAL_MODELS="tiny,huge",
        )
        import asyncio

        async def read() -> dict:
            async with httpx.AsyncClient() as client:
                return await discovery.llama_residency(client, config)  # type: ignore[return-value]

        seen = asyncio.run(read())
    finally:
        key_file.unlink()
    tiny_out = discovery.resident_model("tiny", seen["tiny"], "")
    assert (tiny_out.state, tiny_out.available) == ("unavailable", False)
    assert "its last load failed" in tiny_out.reason
    huge_out = discovery.resident_model("huge", seen["huge"], "")
    assert huge_out.state == "unavailable" and "more than the memory left" in huge_out.reason
    assert huge_out.trained_context == N_CTX_TRAIN and huge_out.quantization == "F32"
    gone = discovery.resident_model("tiny", None, "llama-server unreachable: timed out")
    assert (gone.state, gone.reason) == ("unavailable", "llama-server unreachable: timed out")


def test_a_port_taken_by_another_process_is_refused_not_mistaken_for_the_model(
    residency: str,
) -> None:
    taken = post(residency, "/v1/chat/completions", {"model": "squatted"})
    assert taken.status_code == 503
    assert f"its port {SQUATTED.getsockname()[1]} is taken" in taken.json()["error"]["message"]
