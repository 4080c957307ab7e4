"""nova-watchdog: ``python -m nova_watchdog`` (one run; a systemd timer repeats it).

Exit code 0 after a run (whatever the probes found: the journal has it), 1 when the state file
cannot be written, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from nova_common.credentials import llama_api_key_path, read_secret
from nova_common.envfile import read_env_file
from nova_common.journal import ERR, WARNING, log

from . import probes, state
from .watchdog import Policy, Target, run_once

TARGETS = ("llama-server", "gateway", "settings")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def e(name: str, default: str) -> str:
        return env.get(name, default)

    p = argparse.ArgumentParser(prog="nova-watchdog", description=__doc__)
    p.add_argument(
        "--targets",
        default=e("NOVA_WATCHDOG_TARGETS", "llama-server,gateway"),
        help=f"comma-separated, of {', '.join(TARGETS)}",
    )
    p.add_argument(
        "--failures",
        type=int,
        default=int(e("NOVA_WATCHDOG_FAILURES", "3")),
        help="restart after this many failed probes in a row",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=float(e("NOVA_WATCHDOG_TIMEOUT_S", "10")),
        help="seconds per probe request",
    )
    p.add_argument(
        "--state-file",
        type=Path,
        default=Path(e("NOVA_WATCHDOG_STATE", "/var/lib/nova-watchdog/state.json")),
    )
    p.add_argument("--systemctl", default=e("NOVA_SYSTEMCTL", "systemctl"))
    p.add_argument(
        "--restart-command",
        default=e("NOVA_WATCHDOG_RESTART_COMMAND", "systemctl restart --no-block"),
        help="the unit name is appended (default: %(default)s)",
    )
    p.add_argument(
        "--settings-env", type=Path, default=Path(e("NOVA_SETTINGS_ENV", "/etc/nova/settings.env"))
    )
    p.add_argument("--llama-url", default=env.get("NOVA_LLAMA_URL"))
    p.add_argument("--gateway-url", default=env.get("NOVA_GATEWAY_URL"))
    p.add_argument("--settings-url", default=env.get("NOVA_SETTINGS_URL"))
    p.add_argument("--llama-unit", default=e("NOVA_LLAMA_UNIT", "nova-llama-server.service"))
    p.add_argument("--gateway-unit", default=e("NOVA_GATEWAY_UNIT", "nova-litellm.service"))
    p.add_argument("--settings-unit", default=e("NOVA_SETTINGS_UNIT", "nova-settings.service"))
    p.add_argument(
        "--gateway-chat",
        action="store_true",
        default=e("NOVA_WATCHDOG_GATEWAY_CHAT", "") in ("1", "true", "yes"),
        help="also send a 1-token chat through the gateway (uses the local model)",
    )
    p.add_argument(
        "--master-key-file",
        type=Path,
        default=Path(e("NOVA_MASTER_KEY_FILE", "/etc/nova/secrets/gateway-master-key")),
    )
    p.add_argument(
        "--llama-key-file",
        type=Path,
        default=Path(e("NOVA_LLAMA_API_KEY_FILE", str(llama_api_key_path()))),
        help="llama-server's API key (default: the unit's credential, else %(default)s)",
    )
    p.add_argument("--local-model", default=env.get("NOVA_LOCAL_MODEL"))
    p.add_argument("-v", "--verbose", action="store_true", help="log routine successes too")
    return p


def build_targets(args: argparse.Namespace, settings: Mapping[str, str]) -> list[Target]:
    timeout = args.timeout
    llama = (args.llama_url or settings.get("NOVA_LLAMA_URL") or "http://127.0.0.1:8080").rstrip(
        "/"
    )
    gateway = (
        args.gateway_url or settings.get("NOVA_GATEWAY_URL") or "http://127.0.0.1:4000"
    ).rstrip("/")
    settings_url = (
        args.settings_url
        or "http://{}:{}".format(
            settings.get("NOVA_SETTINGS_HOST", "127.0.0.1"),
            settings.get("NOVA_SETTINGS_PORT", "8000"),
        )
    ).rstrip("/")
    llama_key = read_secret(args.llama_key_file)
    key = model = None
    if args.gateway_chat:
        key = read_secret(args.master_key_file)
        model = args.local_model or settings.get("NOVA_LOCAL_MODEL")
        if key is None or not model:
            log(WARNING, "--gateway-chat: master key or local model unknown; liveliness only")
    available = {
        "llama-server": Target(
            "llama-server",
            args.llama_unit,
            lambda ts: probes.probe_llama(llama, timeout, llama_key, ts.progress),
        ),
        "gateway": Target(
            "gateway",
            args.gateway_unit,
            lambda ts: probes.probe_gateway(gateway, timeout, key, model),
        ),
        "settings": Target(
            "settings",
            args.settings_unit,
            lambda ts: probes.probe_get(settings_url, "/health", timeout),
        ),
    }
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"nova-watchdog: error: unknown target(s): {', '.join(unknown)}")
    return [available[n] for n in names]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = build_parser(env).parse_args(argv)
    if args.failures < 1:
        print("nova-watchdog: error: --failures must be at least 1", file=sys.stderr)
        return 2
    targets = build_targets(args, read_env_file(args.settings_env))
    policy = Policy.from_text(args.failures, args.systemctl, args.restart_command, args.verbose)
    try:
        with state.locked(args.state_file) as got_lock:
            if not got_lock:
                log(WARNING, "another nova-watchdog run holds the lock; skipping this run")
                return 0
            current, warning = state.load(args.state_file)
            if warning:
                log(WARNING, warning)
            run_once(targets, policy, current)
            state.save(args.state_file, current)
    except OSError as exc:
        log(ERR, f"state file {args.state_file}: {exc.strerror}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
