"""nova-diagnose against loopback stand-ins, fake systemctl/journalctl and temp dirs."""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from nova_common.ports import free_port
from nova_diagnose import host
from nova_diagnose.__main__ import main
from nova_diagnose.redact import Redactor
from tests.fixtures.fake_systemd import FakeSystemd
from tests.standins.upstreams import LLAMA_OK, Standin, silent_socket

MASTER_KEY = "nova-master-PLANTED-7f3a9c"
MODEL = "tiny-local"
UNITS = ("nova-llama-server.service", "nova-litellm.service", "nova-settings.service")


@dataclass
class Host:
    tmp: Path
    systemd: FakeSystemd
    llama: Standin
    gateway: Standin
    settings: Standin
    model: Path

    def argv(self, *extra: str) -> list[str]:
        return [
            "--units", " ".join(UNITS),
            "--settings-env", str(self.tmp / "etc/settings.env"),
            "--llama-url", self.llama.url,
            "--gateway-url", self.gateway.url,
            "--settings-url", self.settings.url,
            "--master-key-file", str(self.tmp / "etc/secrets/gateway-master-key"),
            "--model-dir", str(self.tmp / "models"),
            "--llama-current", str(self.tmp / "llama.cpp/current"),
            "--secret-dirs", f"{self.tmp / 'etc/secrets'} {self.tmp / 'state/secrets'}",
            "--config-files", f"{self.tmp / 'etc/settings.env'} {self.tmp / 'state/config.yaml'}",
            "--systemctl", str(self.systemd.systemctl),
            "--journalctl", str(self.systemd.journalctl),
            "--timeout", "0.5",
            "--chat-timeout", "2",
            "--gpu", "off",
            "--min-free-percent", "0",
            *extra,
        ]  # fmt: skip


def _gateway_routes() -> dict:
    return {
        ("GET", "/health/readiness"): (200, {"status": "healthy"}),
        ("GET", "/health/liveliness"): (200, "I'm alive!"),
        ("POST", "/v1/chat/completions"): (200, {"model": MODEL, "choices": [{"index": 0}]}),
        ("GET", "/v1/models"): (200, {"data": [{"id": MODEL}]}),
    }


@pytest.fixture
def nova_host(tmp_path: Path, fake_systemd: FakeSystemd, standins: list[Standin]) -> Host:
    (tmp_path / "etc/secrets").mkdir(parents=True)
    (tmp_path / "etc/secrets/gateway-master-key").write_text(MASTER_KEY + "\n")
    (tmp_path / "state/secrets").mkdir(parents=True)
    (tmp_path / "etc/settings.env").write_text(f"NOVA_LOCAL_MODEL={MODEL}\n")
    (tmp_path / "state/config.yaml").write_text("model_list: []\n")
    models = tmp_path / "models"
    models.mkdir()
    model = models / "tiny.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 2048)
    build = tmp_path / "llama.cpp/builds/b1234-cpu"
    build.mkdir(parents=True)
    (tmp_path / "llama.cpp/current").symlink_to("builds/b1234-cpu")
    for unit in UNITS:
        fake_systemd.unit(unit)
        fake_systemd.set(unit, "journal", f"2025-06-03T01:59:00+0000 h {unit}: started\n")
    fake_systemd.set(
        UNITS[0],
        "ExecStart",
        "{ path=/opt/nova/llama.cpp/current/bin/llama-server ; "
        "argv[]=/opt/nova/llama.cpp/current/bin/llama-server "
        f"--model {model} --alias {MODEL} --n-gpu-layers 0 ; ignore_errors=no }}\n",
    )
    llama = Standin(LLAMA_OK)
    gateway = Standin(_gateway_routes())
    settings = Standin({("GET", "/health"): (200, {"status": "ok"})})
    standins.extend([llama, gateway, settings])
    return Host(tmp_path, fake_systemd, llama, gateway, settings, model)


def test_healthy_host_exits_0_and_chats_through_the_gateway(nova_host: Host, capsys) -> None:
    assert main(nova_host.argv()) == 0
    out = capsys.readouterr().out
    assert ": healthy" in out
    assert "PROBLEMS" not in out
    assert "b1234-cpu" in out and "tiny.gguf" in out
    assert len(out.splitlines()) <= 40
    chat = [r for r in nova_host.gateway.requests if r["path"] == "/v1/chat/completions"]
    assert len(chat) == 1
    assert chat[0]["authorization"] == f"Bearer {MASTER_KEY}"
    assert chat[0]["body"]["model"] == MODEL and chat[0]["body"]["max_tokens"] == 1
    assert MASTER_KEY not in out


def test_problems_exit_1_with_next_steps(nova_host: Host, capsys) -> None:
    nova_host.systemd.unit(UNITS[0], active="failed", sub="failed", result="exit-code", restarts=5)
    nova_host.systemd.set(
        UNITS[0], "err", "2025-06-03T02:00:01+0000 h llama-server[9]: error loading model\n"
    )
    nova_host.gateway.routes[("POST", "/v1/chat/completions")] = (
        401,
        {"error": {"message": "Authentication Error"}},
    )
    nova_host.model.unlink()
    assert main([*nova_host.argv(), "--min-free-percent", "101"]) == 1
    out = capsys.readouterr().out
    assert "nova-llama-server failed (exit-code)" in out
    assert "journalctl -u nova-llama-server -e; is the model file present?" in out
    assert "error loading model" in out  # the unit's last error line
    assert "gateway healthy but chat failed" in out and "check the master key" in out
    assert "(llama-server --model) is missing" in out
    assert "disk < 101% free in" in out
    assert len(out.splitlines()) <= 40


def test_hung_llama_server_and_loading_model(nova_host: Host, capsys, standins) -> None:
    silent = silent_socket()
    try:
        port = silent.getsockname()[1]
        assert main([*nova_host.argv(), "--llama-url", f"http://127.0.0.1:{port}"]) == 1
    finally:
        silent.close()
    out = capsys.readouterr().out
    assert "llama-server does not answer within 0.5 s (hung or stopped?)" in out
    assert "systemctl restart nova-llama-server" in out

    nova_host.llama.routes[("GET", "/health")] = (503, {"error": {"message": "Loading model"}})
    assert main(nova_host.argv()) == 1
    assert "still loading the model" in capsys.readouterr().out


def test_gateway_down_is_a_problem_and_skips_the_chat(nova_host: Host, capsys) -> None:
    argv = [*nova_host.argv(), "--gateway-url", f"http://127.0.0.1:{free_port()}", "--json"]
    assert main(argv) == 1
    report = json.loads(capsys.readouterr().out)
    checks = {c["name"]: c for c in report["http"]}
    assert checks["gateway"]["unreachable"] and not checks["gateway"]["ok"]
    assert checks["chat"]["skipped"]
    assert any("gateway not reachable" in f["message"] for f in report["findings"])


def test_without_systemctl_and_journalctl_units_are_unknown(nova_host: Host, capsys) -> None:
    argv = [
        *nova_host.argv(),
        "--systemctl", str(nova_host.tmp / "no-such-systemctl"),
        "--journalctl", str(nova_host.tmp / "no-such-journalctl"),
        "--json",
    ]  # fmt: skip
    assert main(argv) == 0  # nothing known to be wrong
    report = json.loads(capsys.readouterr().out)
    assert {u["active_state"] for u in report["units"]} == {"unknown"}
    assert report["in_use"]["model_path"] is None
    assert any("unit states unknown" in f["message"] for f in report["findings"])


def test_no_nvidia_driver_is_said_plainly(monkeypatch, nova_host: Host, capsys) -> None:
    pynvml = pytest.importorskip("pynvml")

    def no_driver() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    assert host.gpu_report().reason.startswith("no NVIDIA driver")
    assert main([*nova_host.argv(), "--gpu", "require"]) == 1
    out = capsys.readouterr().out
    assert "GPU    no NVIDIA driver" in out
    assert "llama-server wants the GPU but: no NVIDIA driver" in out


PLANTED = {
    "master": MASTER_KEY,
    "google_file": "PLANTEDgoogleliteral0042",  # literal only: no key shape
    "token": "PLANTED-user-token-31337",
    "sk": "sk-PLANTEDabcdef123456",
    "aiza": "AIzaPLANTEDxxxxxxxxxxxxxxxxx0",
    "hf": "hf_PLANTEDabcdefghij",
    "lsv2": "lsv2_pt_PLANTED0123456789",
    "bearer": "PLANTEDbearerValue.xyz",
}


def test_bundle_redacts_every_planted_secret(nova_host: Host, capsys) -> None:
    tmp, systemd = nova_host.tmp, nova_host.systemd
    (tmp / "state/secrets/cloud_google_api_key").write_text(PLANTED["google_file"])
    tokens = tmp / "state/tokens"
    tokens.mkdir()
    (tokens / "admin.token").write_text(PLANTED["token"] + "\n")
    (tmp / "etc/settings.env").write_text(
        f"NOVA_LOCAL_MODEL={MODEL}\n# leaked {PLANTED['token']} and {PLANTED['google_file']}\n"
    )
    (tmp / "state/config.yaml").write_text(
        f"general_settings:\n  master_key: {PLANTED['master']}\n"
        f"model_list:\n  - litellm_params:\n      api_key: {PLANTED['sk']}\n"
        "      other_key: os.environ/GOOGLE_API_KEY\n"
    )
    systemd.set(
        UNITS[1],
        "journal",
        f"02:00 h litellm: Authorization: Bearer {PLANTED['bearer']}\n"
        f"02:00 h litellm: google key {PLANTED['aiza']} hub {PLANTED['hf']}\n"
        f"02:00 h litellm: langsmith {PLANTED['lsv2']} master {PLANTED['master']}\n",
    )
    systemd.set(UNITS[1], "err", f"02:00 h litellm: bad key {PLANTED['sk']}\n")
    systemd.set(UNITS[1], "unit", f"[Service]\nEnvironment=X={PLANTED['google_file']}\n")
    bundle = tmp / "out/nova-bundle.tar.gz"
    bundle.parent.mkdir()
    argv = [
        *nova_host.argv(),
        "--secret-dirs", f"{tmp / 'etc/secrets'} {tmp / 'state/secrets'} {tokens}",
        "--bundle", str(bundle),
    ]  # fmt: skip
    assert main(argv) == 0
    screen = capsys.readouterr().out
    assert stat_mode(bundle) == 0o600
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        text = "\n".join(tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile())
    assert "nova-bundle/diagnose.txt" in names and "nova-bundle/diagnose.json" in names
    assert f"nova-bundle/journal/{UNITS[1]}.log" in names
    assert f"nova-bundle/units/{UNITS[1]}" in names
    assert any(n.endswith("config.yaml") for n in names)
    assert "os.environ/GOOGLE_API_KEY" in text  # references are kept
    assert "[REDACTED]" in text
    for name, value in PLANTED.items():
        assert value not in text, name
        assert value not in screen, name
    assert not [p for p in os.listdir(bundle.parent) if p.endswith(".tmp")]


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: bearer abc.def-123", "Authorization: bearer "),
        ('{"api_key": "whatever-value"}', '{"api_key": "'),
        ("max_tokens: 1, prompt_tokens_total 5", "max_tokens: 1, prompt_tokens_total 5"),
        ("task-force disk-usage", "task-force disk-usage"),
    ],
)
def test_redactor_shapes(text: str, kept: str) -> None:
    redacted = Redactor().redact(text)
    assert redacted.startswith(kept)
    if kept != text:
        assert "[REDACTED]" in redacted
