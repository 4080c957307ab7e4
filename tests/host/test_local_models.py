"""Several local models on the real host (issue 19): the demo's two quantizations of SmolLM2
behind nova-model-residency. Both answer through the gateway; with memory for one, alternating
requests load and evict and none fails; a pinned model stays; a crash of one model's
llama-server leaves the other serving; a bad llm_models entry stops the play before anything
changes.

The memory and pin cases run the production unit with a test copy of its configuration (a
runtime drop-in pointing ExecStart at it, removed afterwards): same binary, same children,
only the budget and the pins differ.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from .hostlib import COUNTING_PROMPT, LOCAL_MODEL, Answer, Host, chat
from .test_users import add_user, gateway_key, raw_chat, save_settings, unique, wait_usage

pytestmark = pytest.mark.host

Q8 = "SmolLM2-135M-Instruct-Q8_0"
CONFIG = "/etc/nova/llama-models.json"
TEST_CONFIG = "/etc/nova/llama-models-test.json"
DROP_IN = "/run/systemd/system/nova-llama-server.service.d/zz-test-residency.conf"


def residency(host: Host) -> dict:
    response = httpx.get(
        f"{host.llama_url}/residency",
        headers={"authorization": f"Bearer {host.llama_key}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def models(host: Host) -> dict[str, dict]:
    return {m["name"]: m for m in residency(host)["models"]}


def wait_ready(host: Host, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{host.llama_url}/health", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("nova-llama-server did not come back")


def restart_llama(host: Host) -> None:
    host.ssh("systemctl daemon-reload && systemctl restart nova-llama-server.service", timeout=180)
    wait_ready(host)


@pytest.fixture
def residency_config(host: Host) -> Iterator[Callable[[dict], None]]:
    """Run the unit with CONFIG changed by ``change(config)``; the real one again afterwards."""

    def apply(change: dict) -> None:
        config = json.loads(host.ssh(f"cat {CONFIG}"))
        config.update({k: v for k, v in change.items() if k != "pin"})
        for model in config["models"]:
            model["pin"] = model["name"] in change.get("pin", ())
        host.ssh(
            f"cat > {TEST_CONFIG} <<'EOF'\n{json.dumps(config)}\nEOF\n"
            f"mkdir -p {DROP_IN.rsplit('/', 1)[0]} && printf '%s\\n' '[Service]' 'ExecStart=' "
            f"'ExecStart=/usr/local/bin/nova-model-residency --config {TEST_CONFIG}' > {DROP_IN}"
        )
        restart_llama(host)

    try:
        yield apply
    finally:
        host.ssh(f"rm -f {DROP_IN} {TEST_CONFIG}")
        restart_llama(host)


def test_both_models_answer_through_the_gateway(host: Host) -> None:
    host.ensure_llama_running()
    with host.gateway(timeout=120) as client:
        for model in (LOCAL_MODEL, Q8):
            answer = chat(client, model, max_tokens=8)
            assert answer.ok, (model, answer.error)
            assert answer.text.strip()
    served = models(host)
    assert served[LOCAL_MODEL]["state"] == "loaded"
    assert served[Q8]["state"] == "loaded"
    assert served[LOCAL_MODEL]["quantization"] == "Q4_1"
    assert served[Q8]["quantization"] == "Q8_0"


def test_discovery_and_the_gateway_list_every_local_model(host: Host) -> None:
    host.ensure_llama_running()
    assert {LOCAL_MODEL, Q8} <= set(host.gateway_models())
    listed = host.settings_models()
    for name, quantization in ((LOCAL_MODEL, "Q4_1"), (Q8, "Q8_0")):
        model = listed[name]
        assert model["kind"] == "local", model
        assert model["quantization"] == quantization
        assert model["state"] in ("loaded", "loadable")
        assert model["available"] is True
        assert model["file_size"] > 50 * 2**20
        assert model["trained_context"] == 8192
        assert model["context"] == 2048  # --ctx-size 4096 over --parallel 2
    # Q8_0 keeps 8 bits a weight: its file is the bigger one.
    assert listed[Q8]["file_size"] > listed[LOCAL_MODEL]["file_size"]


def test_a_user_can_choose_either_model(host: Host) -> None:
    host.ensure_llama_running()
    token = add_user(host, unique("quant"))
    saved = save_settings(host, token, llm_model=Q8, llm_temperature=0.1, llm_max_tokens=6)
    assert saved["llm_model"] == Q8 and saved["llm_model_available"] is True
    answer = raw_chat(host, gateway_key(host, token), max_tokens=4)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-nova-model"] == Q8
    # Its usage is counted under the model that served it, at no cost (a local model).
    usage = wait_usage(host, token, 1)
    assert usage["requests"] >= 1 and Q8 in json.dumps(usage)


def test_memory_for_one_model_alternates_and_no_request_fails(host: Host, residency_config) -> None:
    sizes = {n: m["footprint_mib"] for n, m in models(host).items()}
    residency_config({"budget_mib": max(sizes.values()) + 8, "pin": ()})
    assert sum(sizes.values()) > max(sizes.values()) + 8  # room for one only
    order = [LOCAL_MODEL, Q8] * 3
    with host.gateway(timeout=180) as client:
        answers = [(m, chat(client, m, max_tokens=4)) for m in order]
    failed = [(m, a.status, a.error) for m, a in answers if not a.ok]
    assert not failed
    # Each answered as itself: no fallback stood in.
    assert all(a.fallbacks == 0 for _, a in answers)
    state = models(host)
    assert [state[n]["state"] for n in (LOCAL_MODEL, Q8)].count("loaded") == 1
    assert state[LOCAL_MODEL]["evictions"] >= 2 and state[Q8]["evictions"] >= 2
    journal = host.ssh("journalctl -u nova-llama-server --no-pager -o cat --since -5min")
    assert f"evicted (least recently used) to make room for '{Q8}'" in journal
    assert f"loading model {LOCAL_MODEL}" in journal


def test_a_pinned_model_is_never_evicted(host: Host, residency_config) -> None:
    sizes = {n: m["footprint_mib"] for n, m in models(host).items()}
    residency_config({"budget_mib": max(sizes.values()) + 8, "pin": (LOCAL_MODEL,)})
    before = models(host)[LOCAL_MODEL]
    assert before["state"] == "loaded" and before["pinned"]
    # Directly: no room beside the pinned model is a clear refusal, with the figures.
    refused = httpx.post(
        f"{host.llama_url}/v1/chat/completions",
        headers={"authorization": f"Bearer {host.llama_key}"},
        json={"model": Q8, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        timeout=60,
    )
    assert refused.status_code == 507
    assert "pinned models (SmolLM2-135M-Instruct)" in refused.json()["error"]["message"]
    # Through the gateway the Q8_0 model's fallback (the pinned one) answers.
    with host.gateway(timeout=120) as client:
        answer = chat(client, Q8, max_tokens=4)
    assert answer.ok, answer.error
    assert answer.fallbacks >= 1
    after = models(host)[LOCAL_MODEL]
    assert after["state"] == "loaded" and after["pid"] == before["pid"]
    assert after["evictions"] == 0
    assert models(host)[Q8]["state"] == "unloaded"
    assert not models(host)[Q8]["fits"]
    listed = host.settings_models()[Q8]
    assert listed["state"] == "unavailable" and "pinned" in listed["reason"]


def test_a_crash_of_one_model_does_not_fail_the_others_requests(host: Host) -> None:
    host.ensure_llama_running()
    with host.gateway(timeout=120) as client:
        assert chat(client, Q8, max_tokens=2).ok
        assert chat(client, LOCAL_MODEL, max_tokens=2).ok
    before = models(host)
    unit_before = host.unit("nova-llama-server.service", "MainPID", "NRestarts")
    streamed: list[Answer] = []

    def long_answer() -> None:
        with host.gateway(timeout=180) as c:
            streamed.append(chat(c, LOCAL_MODEL, COUNTING_PROMPT, max_tokens=120, stream=True))

    worker = threading.Thread(target=long_answer)
    worker.start()
    time.sleep(0.5)
    host.ssh(f"kill -9 {before[Q8]['pid']}")
    worker.join(timeout=180)
    assert streamed and streamed[0].ok, streamed and streamed[0].error
    with host.gateway(timeout=120) as client:
        assert chat(client, LOCAL_MODEL, max_tokens=2).ok
        reloaded = chat(client, Q8, max_tokens=2)
    assert reloaded.ok, reloaded.error
    after = models(host)
    assert after[LOCAL_MODEL]["pid"] == before[LOCAL_MODEL]["pid"]
    assert after[Q8]["pid"] != before[Q8]["pid"]
    assert after[Q8]["crashes"] == before[Q8]["crashes"] + 1
    assert host.unit("nova-llama-server.service", "MainPID", "NRestarts") == unit_before
    journal = host.ssh("journalctl -u nova-llama-server --no-pager -o cat --since -5min")
    assert f"model {Q8}: llama-server exited with status -9" in journal


BAD_ENTRIES = {
    "duplicate name": (
        [
            {"name": "twin", "file": "a.gguf", "sha256": "a" * 64, "source": "controller",
             "controller_path": "/etc/hostname", "default": True},
            {"name": "twin", "file": "b.gguf", "sha256": "b" * 64, "source": "controller",
             "controller_path": "/etc/hostname"},
        ],
        "names must be unique (repeated: twin)",
    ),
    "missing file": (
        [
            {"name": "gone", "file": "gone.gguf", "sha256": "c" * 64, "source": "controller",
             "controller_path": "/nonexistent/gone.gguf"},
        ],
        "no file at /nonexistent/gone.gguf on the controller",
    ),
    "wrong checksum": (
        [
            {"name": "wrong", "file": "wrong.gguf", "sha256": "d" * 64, "source": "controller",
             "controller_path": "/etc/hostname"},
        ],
        "its sha256 is",
    ),
    "bad sha256": (
        [{"name": "short", "file": "short.gguf", "sha256": "abc", "hf_repo": "x/y"}],
        "llm_models entry 1 (short) is not valid",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_a_bad_llm_models_entry_stops_the_play_before_anything_changes(
    host: Host, case: str
) -> None:
    assert host.playbook is not None
    entries, message = BAD_ENTRIES[case]
    watched = (
        f"{CONFIG} /etc/nova/gateway/context.json /etc/systemd/system/nova-llama-server.service"
    )
    before = host.ssh(f"stat -c '%n %Y' {watched} 2>/dev/null; ls /var/lib/nova/models")
    pid = host.unit("nova-llama-server.service", "MainPID")
    rc, output = host.playbook(
        ["-e", json.dumps({"llm_models": entries, "nova_local_model_name": entries[0]["name"]})]
    )
    assert rc != 0
    assert message in output, output[-3000:]
    assert "Nothing was changed" in output
    assert "changed=0" in output.split("PLAY RECAP")[-1]
    assert host.ssh(f"stat -c '%n %Y' {watched} 2>/dev/null; ls /var/lib/nova/models") == before
    assert host.unit("nova-llama-server.service", "MainPID") == pid
