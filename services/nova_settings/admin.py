"""``nova-settings-admin`` (or ``python -m nova_settings.admin``): schema migrations, user
provisioning and rendering the gateway config, for the Ansible role.

Reads the same NOVA_* environment as the service (at least NOVA_SETTINGS_STATE_DIR, and
NOVA_LOCAL_MODEL for seeding defaults). Prints one JSON object; never prints a token.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from pathlib import Path

from nova_common.files import write_atomic

from . import crud
from .core import security
from .core.config import Config
from .core.db import Database, SchemaTooNewError, migrate, open_database
from .core.logging_setup import setup_logging
from .gateway import litellm_config

USER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def _chown_db_to_state_dir_owner(config: Config) -> None:
    """Run as root, leave the DB files owned like the state dir (the service user's)."""
    if os.geteuid() != 0:
        return
    try:
        owner = config.state_dir.stat()
    except OSError:
        return
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{config.db_path}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            os.chown(path, owner.st_uid, owner.st_gid)


def _token_file_matches(path: Path, token_hash: str) -> bool:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return False
    return bool(token) and security.token_matches(token, token_hash)


def ensure_user(db: Database, config: Config, name: str, token_file: Path) -> bool:
    """Create ``name`` (with default settings) and/or give it a fresh token written to
    ``token_file``, unless the file already holds the user's current token. True if changed."""
    user = crud.user_by_name(name)
    if user is not None and _token_file_matches(token_file, user.token_hash):
        return False
    token = security.generate_token()
    with db.atomic("IMMEDIATE"):
        crud.set_user_token(name, security.hash_token(token), config.local_model)
        # Write the file before committing: if that fails, the old token stays valid.
        token_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(token_file, token + "\n", mode=0o600)
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nova-settings-admin", description=__doc__)
    parser.add_argument(
        "--state-dir", type=Path, help="overrides NOVA_SETTINGS_STATE_DIR for this command"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the database schema")
    ensure = sub.add_parser("ensure-user", help="make sure a user and its token file exist")
    ensure.add_argument("name")
    ensure.add_argument("--token-file", type=Path, required=True)
    sub.add_parser(
        "render-gateway-config",
        help="render the gateway's LiteLLM config (context: NOVA_GATEWAY_CONTEXT) if it changed",
    )
    return parser


def _render_gateway_config(config: Config) -> int:
    try:
        changed = litellm_config.apply(config)
    except litellm_config.GatewayConfigError as exc:
        print(f"nova-settings-admin: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"changed": changed, "path": str(config.gateway_config_path)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.umask(0o077)
    try:
        config = Config()
    except ValueError as exc:
        print(f"nova-settings-admin: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.state_dir is not None:
        config = config.model_copy(update={"state_dir": args.state_dir})
    setup_logging("WARNING")
    if args.command == "render-gateway-config":
        return _render_gateway_config(config)
    db = open_database(config.db_path)
    try:
        with db.connection_context():
            try:
                before, after = migrate(db)
            except SchemaTooNewError as exc:
                print(f"nova-settings-admin: {exc}", file=sys.stderr)
                return 1
            if args.command == "migrate":
                result: dict[str, object] = {
                    "changed": before != after,
                    "from_version": before,
                    "to_version": after,
                }
            else:
                if not USER_NAME_RE.match(args.name):
                    print("nova-settings-admin: bad user name", file=sys.stderr)
                    return 2
                changed = ensure_user(db, config, args.name, args.token_file)
                result = {"changed": changed or before != after}
    finally:
        db.close_all()
    _chown_db_to_state_dir_owner(config)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
