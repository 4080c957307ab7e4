"""nova-watchdog: the consecutive-failure counter, restarts after exactly N, and what it skips."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nova_common.ports import free_port
from nova_watchdog import probes
from nova_watchdog.__main__ import main
from tests.fixtures.fake_systemd import FakeSystemd
from tests.standins.upstreams import LLAMA_OK, Standin, silent_socket

LLAMA = "nova-llama-server.service"
GATEWAY = "nova-litellm.service"


@pytest.fixture
def silent() -> str:
    s = silent_socket()
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


class Watchdog:
    def __init__(self, tmp: Path, systemd: FakeSystemd, recorder: tuple[Path, Path]) -> None:
        self.state_file = tmp / "state/state.json"
        self.systemd = systemd
        self.script, self.log = recorder
        systemd.unit(LLAMA)
        systemd.unit(GATEWAY)
        self.base = [
            "--state-file", str(self.state_file),
            "--systemctl", str(systemd.systemctl),
            "--restart-command", f"{self.script} restart --no-block",
            "--settings-env", str(tmp / "no-settings.env"),
            "--timeout", "0.3",
        ]  # fmt: skip

    def run(self, *argv: str) -> int:
        return main([*self.base, *argv])

    def restarts(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def failures(self, target: str = "llama-server") -> int:
        return json.loads(self.state_file.read_text())["targets"][target]["failures"]


@pytest.fixture
def watchdog(tmp_path: Path, fake_systemd: FakeSystemd, recorder) -> Watchdog:
    return Watchdog(tmp_path, fake_systemd, recorder)


def test_hung_server_restarted_after_exactly_n_failures(watchdog: Watchdog, silent: str, capsys):
    args = ("--targets", "llama-server", "--llama-url", silent, "--failures", "3")
    for n in (1, 2):
        assert watchdog.run(*args) == 0
        assert watchdog.failures() == n
        assert watchdog.restarts() == []
        err = capsys.readouterr().err
        assert f"<4>{LLAMA} probe failed ({n}/3): POST /completion: no answer within 0.3 s" in err
        assert "<3>" not in err
    assert watchdog.run(*args) == 0
    assert watchdog.restarts() == [f"restart --no-block {LLAMA}"]
    err = capsys.readouterr().err
    assert f"<3>{LLAMA} failed 3 probes in a row" in err and "restarting it" in err
    assert watchdog.failures() == 0
    state = json.loads(watchdog.state_file.read_text())["targets"]["llama-server"]
    assert state["restarts"] == 1
    # counting starts afresh: one more failure does not restart again
    assert watchdog.run(*args) == 0
    assert watchdog.failures() == 1 and len(watchdog.restarts()) == 1


def test_success_resets_the_counter(watchdog: Watchdog, standins, capsys):
    llama = Standin(LLAMA_OK)
    standins.append(llama)
    down = f"http://127.0.0.1:{free_port()}"
    sequence = [down, down, llama.url, down, down, llama.url]
    for url in sequence:
        assert watchdog.run("--targets", "llama-server", "--llama-url", url) == 0
    assert watchdog.restarts() == []
    assert watchdog.failures() == 0
    err = capsys.readouterr().err
    assert f"<5>{LLAMA} answers again after 2 failed probe(s)" in err
    assert "ConnectError" in err
    assert llama.paths() == ["/completion", "/completion"]
    assert llama.requests[0]["body"]["n_predict"] == 1


def test_unit_not_active_is_neither_probed_nor_restarted(watchdog: Watchdog, standins):
    llama = Standin({("POST", "/completion"): (500, {"error": "broken"})})
    standins.append(llama)
    args = ("--targets", "llama-server", "--llama-url", llama.url, "--failures", "2")
    assert watchdog.run(*args) == 0
    assert watchdog.failures() == 1
    for state in ("inactive", "activating", "failed"):
        watchdog.systemd.unit(LLAMA, active=state)
        for _ in range(3):
            assert watchdog.run(*args) == 0
        assert watchdog.failures() == 0
    assert len(llama.requests) == 1
    assert watchdog.restarts() == []


def test_unknown_unit_state_is_not_probed(watchdog: Watchdog, standins, tmp_path):
    llama = Standin(LLAMA_OK)
    standins.append(llama)
    argv = ("--targets", "llama-server", "--llama-url", llama.url)
    assert watchdog.run(*argv, "--systemctl", str(tmp_path / "no-systemctl")) == 0
    assert llama.requests == [] and watchdog.restarts() == []


def test_gateway_liveliness_and_optional_chat(watchdog: Watchdog, standins, tmp_path, capsys):
    gateway = Standin(
        {
            ("GET", "/health/liveliness"): (200, "I'm alive!"),
            ("POST", "/v1/chat/completions"): (200, {"choices": []}),
        }
    )
    standins.append(gateway)
    key = tmp_path / "master-key"
    key.write_text("sk-master-for-test\n")
    base = ("--targets", "gateway", "--gateway-url", gateway.url, "--failures", "2")
    assert watchdog.run(*base) == 0
    assert gateway.paths() == ["/health/liveliness"]
    chat = ("--gateway-chat", "--master-key-file", str(key), "--local-model", "tiny")
    assert watchdog.run(*base, *chat) == 0
    assert gateway.paths()[1:] == ["/health/liveliness", "/v1/chat/completions"]
    assert gateway.requests[-1]["authorization"] == "Bearer sk-master-for-test"
    assert gateway.requests[-1]["body"]["max_tokens"] == 1
    gateway.routes[("POST", "/v1/chat/completions")] = (500, {"error": "upstream"})
    for _ in range(2):
        assert watchdog.run(*base, *chat) == 0
    assert watchdog.restarts() == [f"restart --no-block {GATEWAY}"]
    err = capsys.readouterr().err
    assert "sk-master-for-test" not in err
    assert f"<3>{GATEWAY} failed 2 probes in a row (last: chat with tiny: HTTP 500)" in err


def test_llama_probes_carry_its_api_key(watchdog: Watchdog, standins, tmp_path: Path, capsys):
    llama = Standin()
    llama.hang.add("/completion")  # so the probe asks /metrics too
    standins.append(llama)
    key = tmp_path / "llama-api-key"
    key.write_text("nl-key-for-test\n")
    args = ("--targets", "llama-server", "--llama-url", llama.url, "--llama-key-file", str(key))
    assert watchdog.run(*args) == 0
    assert llama.paths() == ["/completion", "/metrics"]
    assert {r["authorization"] for r in llama.requests} == {"Bearer nl-key-for-test"}
    assert "nl-key-for-test" not in capsys.readouterr().err


def test_busy_server_is_not_stuck_while_tokens_move(watchdog: Watchdog, standins, capsys):
    llama = Standin()
    llama.hang.add("/completion")
    standins.append(llama)

    def metrics(tokens: int) -> None:
        text = f"llamacpp:requests_processing 2\nllamacpp:tokens_predicted_total {tokens}\n"
        llama.routes[("GET", "/metrics")] = (200, text)

    args = ("--targets", "llama-server", "--llama-url", llama.url, "--failures", "2")
    metrics(100)
    assert watchdog.run(*args) == 0
    metrics(250)
    assert watchdog.run(*args) == 0
    assert watchdog.failures() == 0
    assert "is busy, not stuck" in capsys.readouterr().err
    for _ in range(2):  # counters frozen: the main loop answers but nothing moves
        assert watchdog.run(*args) == 0
    assert watchdog.restarts() == [f"restart --no-block {LLAMA}"]


def test_corrupt_state_file_starts_afresh(watchdog: Watchdog, silent: str, capsys):
    watchdog.state_file.parent.mkdir(parents=True)
    watchdog.state_file.write_text("{not json")
    assert watchdog.run("--targets", "llama-server", "--llama-url", silent) == 0
    assert watchdog.failures() == 1
    assert "<4>state file" in capsys.readouterr().err


def test_sigstopped_process_times_out():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.standins.upstreams"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        url = proc.stdout.readline().strip()
        assert probes.probe_llama(url, 2.0, None, None).ok
        proc.send_signal(signal.SIGSTOP)
        result = probes.probe_llama(url, 0.3, None, None)
        assert not result.ok and "no answer within 0.3 s" in result.detail
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()
