"""Where everything is: flags, else the environment, else /etc/nova/settings.env, else defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from nova_common.envfile import read_env_file
from nova_common.suite import DIAGNOSE_UNITS, SERVICE_UNITS

DEFAULT_SECRET_DIRS = (
    "/etc/nova/secrets",
    "/var/lib/nova-settings/secrets",
    "/var/lib/nova-settings/tokens",
)
DEFAULT_CONFIG_FILES = (
    "/etc/nova/settings.env",
    "/etc/nova/gateway/context.json",
    "/var/lib/nova-settings/gateway/config.yaml",
)


@dataclass(frozen=True)
class Options:
    units: tuple[str, ...]
    llama_unit: str
    gateway_unit: str
    settings_unit: str
    llama_url: str
    gateway_url: str
    settings_url: str
    prometheus_url: str | None  # None: --no-monitoring
    settings_env: Path
    master_key_file: Path
    local_model: str | None
    model_dir: Path
    llama_current: Path
    secret_dirs: tuple[Path, ...]
    config_files: tuple[Path, ...]
    systemctl: str
    journalctl: str
    timeout_s: float
    chat_timeout_s: float
    chat: bool
    gpu: str  # auto | require | off
    min_free_percent: float
    json: bool
    bundle: Path | None


def _split(value: str) -> tuple[str, ...]:
    return tuple(part for part in value.replace(",", " ").split() if part)


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def e(name: str, default: str) -> str:
        return env.get(name, default)

    p = argparse.ArgumentParser(
        prog="nova-diagnose",
        description="One screen on the nova-* units, their health, the GPU, disk, model and build.",
        epilog="Exit code 0 when healthy, 1 when problems were found, 3 when --bundle failed.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--bundle", type=Path, help="also write a redacted support bundle (.tar.gz)")
    p.add_argument("--units", default=e("NOVA_DIAGNOSE_UNITS", " ".join(DIAGNOSE_UNITS)))
    p.add_argument("--llama-unit", default=e("NOVA_LLAMA_UNIT", SERVICE_UNITS[0]))
    p.add_argument("--gateway-unit", default=e("NOVA_GATEWAY_UNIT", SERVICE_UNITS[1]))
    p.add_argument("--settings-unit", default=e("NOVA_SETTINGS_UNIT", SERVICE_UNITS[2]))
    p.add_argument(
        "--settings-env", type=Path, default=Path(e("NOVA_SETTINGS_ENV", "/etc/nova/settings.env"))
    )
    p.add_argument("--llama-url", default=env.get("NOVA_LLAMA_URL"))
    p.add_argument("--gateway-url", default=env.get("NOVA_GATEWAY_URL"))
    p.add_argument("--settings-url", default=env.get("NOVA_SETTINGS_URL"))
    p.add_argument("--prometheus-url", default=env.get("NOVA_PROMETHEUS_URL"))
    p.add_argument(
        "--no-monitoring", action="store_true", help="skip Prometheus' alerts and series"
    )
    p.add_argument(
        "--local-model", default=env.get("NOVA_LOCAL_MODEL"), help="model for the test chat"
    )
    p.add_argument(
        "--master-key-file",
        type=Path,
        default=Path(e("NOVA_MASTER_KEY_FILE", "/etc/nova/secrets/gateway-master-key")),
    )
    p.add_argument(
        "--model-dir", type=Path, default=Path(e("NOVA_MODEL_DIR", "/var/lib/nova/models"))
    )
    p.add_argument(
        "--llama-current",
        type=Path,
        default=Path(e("NOVA_LLAMA_CURRENT", "/opt/nova/llama.cpp/current")),
    )
    p.add_argument("--secret-dirs", default=e("NOVA_SECRET_DIRS", " ".join(DEFAULT_SECRET_DIRS)))
    p.add_argument(
        "--config-files", default=e("NOVA_DIAGNOSE_CONFIG_FILES", " ".join(DEFAULT_CONFIG_FILES))
    )
    p.add_argument("--systemctl", default=e("NOVA_SYSTEMCTL", "systemctl"))
    p.add_argument("--journalctl", default=e("NOVA_JOURNALCTL", "journalctl"))
    p.add_argument("--timeout", type=float, default=float(e("NOVA_DIAGNOSE_TIMEOUT_S", "3")))
    p.add_argument(
        "--chat-timeout", type=float, default=float(e("NOVA_DIAGNOSE_CHAT_TIMEOUT_S", "30"))
    )
    p.add_argument(
        "--no-chat", action="store_true", help="skip the 1-token chat through the gateway"
    )
    p.add_argument(
        "--gpu",
        choices=("auto", "require", "off"),
        default=e("NOVA_DIAGNOSE_GPU", "auto"),
        help="auto: a missing GPU is a problem only when llama-server asks for GPU layers",
    )
    p.add_argument(
        "--min-free-percent", type=float, default=float(e("NOVA_DIAGNOSE_MIN_FREE_PERCENT", "10"))
    )
    return p


def parse_options(argv: Sequence[str] | None, env: Mapping[str, str] | None = None) -> Options:
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    settings = read_env_file(args.settings_env)
    units = _split(args.units)
    return Options(
        units=units,
        llama_unit=args.llama_unit,
        gateway_unit=args.gateway_unit,
        settings_unit=args.settings_unit,
        llama_url=(
            args.llama_url or settings.get("NOVA_LLAMA_URL") or "http://127.0.0.1:8080"
        ).rstrip("/"),
        gateway_url=(
            args.gateway_url or settings.get("NOVA_GATEWAY_URL") or "http://127.0.0.1:4000"
        ).rstrip("/"),
        settings_url=(args.settings_url or _settings_url(settings)).rstrip("/"),
        prometheus_url=None
        if args.no_monitoring
        else (
            args.prometheus_url or settings.get("NOVA_PROMETHEUS_URL") or "http://127.0.0.1:9090"
        ).rstrip("/"),
        settings_env=args.settings_env,
        master_key_file=args.master_key_file,
        local_model=args.local_model or settings.get("NOVA_LOCAL_MODEL") or None,
        model_dir=args.model_dir,
        llama_current=args.llama_current,
        secret_dirs=tuple(Path(p) for p in _split(args.secret_dirs)),
        config_files=tuple(Path(p) for p in _split(args.config_files)),
        systemctl=args.systemctl,
        journalctl=args.journalctl,
        timeout_s=args.timeout,
        chat_timeout_s=args.chat_timeout,
        chat=not args.no_chat,
        gpu=args.gpu,
        min_free_percent=args.min_free_percent,
        json=args.json,
        bundle=args.bundle,
    )


def _settings_url(settings: Mapping[str, str]) -> str:
    host = settings.get("NOVA_SETTINGS_HOST", "127.0.0.1")
    port = settings.get("NOVA_SETTINGS_PORT", "8000")
    return f"http://{host}:{port}"
