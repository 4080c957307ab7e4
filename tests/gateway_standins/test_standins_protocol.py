"""The stand-ins' own HTTP behaviour, stdlib client only (runs without LiteLLM)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import GEMINI_KEY, ROOT


def call(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as err:
        raw, status = err.read().decode(), err.code
    if raw.startswith("data:"):
        return status, raw
    return status, json.loads(raw)


def test_gemini_list_models_checks_the_key_like_google(gemini):
    status, body = call(f"{gemini.base}/models", headers={"x-goog-api-key": GEMINI_KEY})
    assert status == 200
    assert "models/gemini-2.5-flash" in [m["name"] for m in body["models"]]

    status, body = call(f"{gemini.base}/models", headers={"x-goog-api-key": "AIzaWRONG"})
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert body["error"]["details"][0]["reason"] == "API_KEY_INVALID"

    status, body = call(f"{gemini.base}/models")
    assert (status, body["error"]["status"]) == (403, "PERMISSION_DENIED")

    log = gemini.logged("GET", "/v1beta/models")
    assert [entry["key_present"] for entry in log] == [True, True, False]
    assert GEMINI_KEY not in json.dumps(log)


def test_gemini_key_in_query_is_not_logged(gemini):
    status, _ = call(f"{gemini.base}/models?key={GEMINI_KEY}&pageSize=5")
    assert status == 200
    (entry,) = gemini.logged()
    assert entry["path"] == "/v1beta/models?pageSize=5"
    assert entry["key_present"] is True


def test_gemini_unversioned_path_is_404(gemini):
    status, body = call(
        f"{gemini.root}/models/gemini-2.5-flash:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        {"x-goog-api-key": GEMINI_KEY},
    )
    assert (status, body["error"]["status"]) == (404, "NOT_FOUND")


def test_gemini_sse_events(gemini):
    status, raw = call(
        f"{gemini.base}/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]},
        {"x-goog-api-key": GEMINI_KEY},
    )
    assert status == 200
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    assert len(events) == 3
    text = "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events)
    assert text == "gemini-standin: one two three four"
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["totalTokenCount"] > 0


def test_control_endpoint_sets_faults(gemini):
    status, mode = call(f"{gemini.root}/_standin/mode", {"down": True, "delay_s": 0})
    assert (status, mode["down"]) == (200, True)
    status, body = call(f"{gemini.base}/models", headers={"x-goog-api-key": GEMINI_KEY})
    assert (status, body["error"]["status"]) == (503, "UNAVAILABLE")
    assert call(f"{gemini.root}/_standin/mode", {"bogus": 1})[0] == 400
    status, _ = call(f"{gemini.root}/_standin/reset", {})
    assert status == 200 and gemini.down is False
    status, log = call(f"{gemini.root}/_standin/requests")
    assert (status, log) == (200, [])


def test_openai_backend_health_models_and_down(openai_backend):
    assert call(f"{openai_backend.root}/health") == (200, {"status": "ok"})
    status, body = call(f"{openai_backend.base}/models")
    assert (status, body["data"][0]["id"]) == (200, "standin-model")
    openai_backend.down = True
    status, body = call(f"{openai_backend.root}/health")
    assert (status, body["error"]["message"]) == (503, "Loading model")


def test_standalone_run_prints_address_not_key(tmp_path: Path):
    key_file = tmp_path / "key"
    key_file.write_text(GEMINI_KEY + "\n")
    command = [sys.executable, "-m", "tests.standins.gemini_api", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--key-file", str(key_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line and GEMINI_KEY not in line
        root = line.split(" listening on ")[1].split()[0]
        status, _ = call(f"{root}/v1beta/models", headers={"x-goog-api-key": GEMINI_KEY})
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_openai_backend_runs_standalone():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.openai_backend", "--port", "0", "--model", "m1"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        root = proc.stdout.readline().split(" listening on ")[1].split()[0]
        assert call(f"{root}/v1/models")[1]["data"][0]["id"] == "m1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
