"""``nova-settings-admin`` (or ``python -m nova_settings.admin``): schema migrations, users,
the gateway's identity snapshot and config.

For operators on the host::

    nova-settings-admin user add NAME [--admin]   # prints the new user's settings token only
    nova-settings-admin user list
    nova-settings-admin user disable NAME         # (and enable): their keys stop working at once
    nova-settings-admin user token NAME --rotate  # prints a new settings token only
    nova-settings-admin user budget NAME TOKENS|none

For the Ansible role: ``migrate``, ``ensure-user``, ``publish-identity``,
``render-gateway-config`` (each prints one JSON object, never a token).

Reads the same NOVA_* environment as the service; the service's environment file
(/etc/nova/settings.env, or NOVA_SETTINGS_ENV_FILE) fills in what the environment leaves out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from pathlib import Path

import peewee

from nova_common.files import write_atomic

from . import crud
from .core import security
from .core.config import Config
from .core.db import Database, DatabaseConfigError, SchemaTooNewError, migrate, open_database
from .core.logging_setup import setup_logging
from .gateway import identity, litellm_config
from .schemas import USER_NAME_PATTERN

USER_NAME_RE = re.compile(USER_NAME_PATTERN)


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
    # The identity snapshot and its lock: the service's user must replace them later (the
    # group, the gateway's, comes from the directory's setgid bit).
    if config.gateway_identity is not None:
        for path in (config.gateway_identity, identity.lock_path(config.gateway_identity)):
            with contextlib.suppress(FileNotFoundError):
                os.chown(path, owner.st_uid, -1)


def _token_file_matches(path: Path, token_hash: str) -> bool:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError):
        return False
    return bool(token) and security.token_matches(token, token_hash)


def ensure_user(
    db: Database, config: Config, name: str, token_file: Path, role: str | None = None
) -> bool:
    """Create ``name`` (with default settings) and/or give it a fresh token written to
    ``token_file``, unless the file already holds the user's current token; give it ``role``
    (if set). A user an operator disabled stays disabled. True if anything changed."""
    user = crud.user_by_name(name)
    changed = False
    if user is None or not _token_file_matches(token_file, user.token_hash):
        token = security.generate_token()
        with db.atomic("IMMEDIATE"):
            crud.set_user_token(name, security.hash_token(token), config.local_model)
            # Write the file before committing: if that fails, the old token stays valid.
            token_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(token_file, token + "\n", mode=0o600)
        changed = True
        user = crud.user_by_name(name)
    assert user is not None
    if role is not None and user.role != role:
        crud.update_user(db, name, role=role)
        changed = True
    return changed


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
    ensure.add_argument("--role", choices=crud.ROLES, help="and give the user this role")
    sub.add_parser(
        "render-gateway-config",
        help="render the gateway's LiteLLM config (context: NOVA_GATEWAY_CONTEXT) if it changed",
    )
    sub.add_parser(
        "publish-identity",
        help="rewrite the gateway's identity snapshot (NOVA_GATEWAY_IDENTITY) if it changed",
    )
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user; prints its settings token")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="with the admin role")
    user.add_parser("list", help="list users")
    for action in ("disable", "enable"):
        user.add_parser(action, help=f"{action} a user").add_argument("name")
    token = user.add_parser("token", help="issue a new settings token (--rotate)")
    token.add_argument("name")
    token.add_argument("--rotate", action="store_true", required=True)
    budget = user.add_parser("budget", help="set a daily token budget (none: no budget)")
    budget.add_argument("name")
    budget.add_argument("tokens")
    return parser


def _user_command(db: Database, config: Config, args: argparse.Namespace) -> int:
    """``user ...``: prints a token (add, token) or a table (list); errors on stderr."""
    if args.action == "list":
        print(f"{'NAME':<24} {'ROLE':<6} {'STATE':<9} {'BUDGET':>12} GATEWAY-KEY")
        for u in crud.list_users():
            budget = str(u.daily_token_budget) if u.daily_token_budget else "-"
            state = "disabled" if u.disabled else "enabled"
            has_key = "yes" if u.gateway_key_hash else "no"
            print(f"{u.name:<24} {u.role:<6} {state:<9} {budget:>12} {has_key}")
        return 0
    if not USER_NAME_RE.match(args.name):
        print("nova-settings-admin: bad user name", file=sys.stderr)
        return 2
    out: str | None = None
    if args.action == "add":
        role = "admin" if args.admin else "user"
        out = crud.create_user(db, args.name, role, config.local_model)
    elif args.action == "token":
        out = crud.rotate_token(db, args.name)
    elif args.action in ("disable", "enable"):
        crud.update_user(db, args.name, disabled=args.action == "disable")
    elif args.action == "budget":
        tokens = None if args.tokens == "none" else int(args.tokens)
        if tokens is not None and not 1 <= tokens <= 10**9:
            print("nova-settings-admin: budget: 1 to 10^9 tokens, or none", file=sys.stderr)
            return 2
        crud.update_user(db, args.name, budget=tokens, set_budget=True)
    identity.publish(db, config)
    if out is not None:
        print(out)
    return 0


def _load_config() -> Config:
    env_file = Path(os.environ.get("NOVA_SETTINGS_ENV_FILE", "/etc/nova/settings.env"))
    if os.access(env_file, os.R_OK):
        return Config(_env_file=env_file)  # type: ignore[call-arg]
    return Config()


def _render_gateway_config(config: Config) -> int:
    try:
        changed = litellm_config.apply(config)
    except litellm_config.GatewayConfigError as exc:
        print(f"nova-settings-admin: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"changed": changed, "path": str(config.gateway_config_path)}))
    return 0


def _run(args: argparse.Namespace, config: Config, db: Database) -> int:
    """Migrate, then the command; prints its JSON result."""
    with db.connection_context():
        try:
            before, after = migrate(db)
        except SchemaTooNewError as exc:
            print(f"nova-settings-admin: {exc}", file=sys.stderr)
            return 1
        if args.command == "user":
            try:
                return _user_command(db, config, args)
            except crud.UserRefused as exc:
                print(f"nova-settings-admin: {exc.message}", file=sys.stderr)
                return 1
            except ValueError:
                print("nova-settings-admin: budget: tokens or none", file=sys.stderr)
                return 2
        if args.command == "migrate":
            result: dict[str, object] = {
                "changed": before != after,
                "from_version": before,
                "to_version": after,
            }
        elif args.command == "publish-identity":
            result = {"changed": identity.publish(db, config)}
        else:
            if not USER_NAME_RE.match(args.name):
                print("nova-settings-admin: bad user name", file=sys.stderr)
                return 2
            changed = ensure_user(db, config, args.name, args.token_file, args.role)
            if changed:
                identity.publish(db, config)
            result = {"changed": changed or before != after}
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.umask(0o077)
    try:
        config = _load_config()
    except ValueError as exc:
        print(f"nova-settings-admin: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.state_dir is not None:
        config = config.model_copy(update={"state_dir": args.state_dir})
    setup_logging("WARNING")
    if args.command == "render-gateway-config":
        return _render_gateway_config(config)
    try:
        db = open_database(config)
    except DatabaseConfigError as exc:
        print(f"nova-settings-admin: bad configuration: {exc}", file=sys.stderr)
        return 2
    # Shared Postgres: the changes made here reach the other gateway hosts' snapshots too.
    peers = identity.start_peers(db, config) if args.command != "migrate" else None
    try:
        return _run(args, config, db)
    except peewee.OperationalError as exc:  # unreachable server, refused login, locked file
        print(f"nova-settings-admin: database: {exc}".rstrip(), file=sys.stderr)
        return 1
    finally:
        identity.stop_peers(peers)
        db.close_all()
        _chown_db_to_state_dir_owner(config)


if __name__ == "__main__":
    sys.exit(main())
