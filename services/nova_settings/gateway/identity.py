"""Publishing who may call the gateway: the identity snapshot (format and reader:
nova_common/gateway_identity.py).

Every change to what the gateway must know (a gateway key created, rotated or revoked, a user
disabled or re-enabled, a role, settings or budget changed, a budget used up, a provider key
stored or removed) commits to the database first and then calls ``publish()`` before the API call
answers, so the gateway sees it on its next request. Publishing reads the committed state and
writes the whole file under an exclusive lock, so concurrent publishers (the service's threads,
``nova-settings-admin``) cannot leave an older state in place of a newer one. Where several
gateway hosts share a Postgres database, publishing also has the other hosts rewrite theirs
(identity_peers.py) before it returns.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nova_common.gateway_identity import Identity, next_utc_midnight, utc_day, write_snapshot

from ..core.config import Config
from ..core.db import Database, postgres_params
from ..crud import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, utcnow
from ..models import Usage, User, UserSettings, WebSession
from . import litellm_config
from .identity_peers import IdentityPeers

log = logging.getLogger(__name__)


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(lock_path(path), os.O_RDONLY | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def over_budget_user_ids(day: str | None = None) -> set[int]:
    """Users whose tokens today have reached their daily budget. Needs a connection."""
    day = day or utc_day()
    used: dict[int, int] = {}
    for row in (
        Usage.select(Usage.user_id, Usage.prompt_tokens, Usage.completion_tokens)
        .where(Usage.day == day)
        .tuples()
    ):
        used[row[0]] = used.get(row[0], 0) + row[1] + row[2]
    return {
        user_id
        for user_id, budget in User.select(User.id, User.daily_token_budget)
        .where(User.daily_token_budget.is_null(False))
        .tuples()
        if used.get(user_id, 0) >= budget
    }


def _try_key_hashes() -> dict[int, list[str]]:
    """User id -> the Try-it keys of their live settings-page sessions (web/session.py)."""
    now = utcnow()
    out: dict[int, list[str]] = {}
    for digest, user_id in (
        WebSession.select(WebSession.try_key_hash, WebSession.user)
        .where(WebSession.try_key_hash.is_null(False) & (WebSession.expires_at > now))
        .tuples()
    ):
        out.setdefault(user_id, []).append(digest)
    return out


def _identities(config: Config, over: set[int]) -> dict[str, Identity]:
    resets = next_utc_midnight().isoformat(timespec="seconds")
    settings = {row.user_id: row for row in UserSettings.select()}
    try_keys = _try_key_hashes()
    out: dict[str, Identity] = {}
    for user in User.select().where(
        User.gateway_key_hash.is_null(False) | User.id.in_(list(try_keys))
    ):
        row = settings.get(user.id)
        ident = Identity(
            user_id=user.id,
            name=user.name,
            role=user.role,
            disabled=bool(user.disabled),
            model=(row.llm_model if row else None) or config.local_model,
            temperature=row.llm_temperature if row else DEFAULT_TEMPERATURE,
            max_tokens=row.llm_max_tokens if row else DEFAULT_MAX_TOKENS,
            daily_token_budget=user.daily_token_budget,
            over_budget_until=resets if user.id in over else None,
        )
        for digest in [user.gateway_key_hash, *try_keys.get(user.id, ())]:
            if digest is not None:
                out[digest] = ident
    return out


_last_over_budget: set[int] | None = None
_peers: IdentityPeers | None = None


def use_peers(peers: IdentityPeers | None) -> None:
    """Announce every publish to the other gateway hosts through ``peers`` (None: stop)."""
    global _peers
    _peers = peers


def start_peers(db: Database, config: Config) -> IdentityPeers | None:
    """On Postgres with a snapshot to keep: listen for the other hosts' changes, and announce
    ours (``use_peers``). None where there is nothing to share (SQLite, or no snapshot)."""
    if db.backend != "postgres" or config.gateway_identity is None:
        return None
    dbname, params = postgres_params(config)
    peers = IdentityPeers(db, dbname, params, lambda: write_local(db, config))
    if not peers.start():
        log.warning("identity listener not connected yet; it keeps trying")
    use_peers(peers)
    return peers


def stop_peers(peers: IdentityPeers | None) -> None:
    """Undo ``start_peers``: announce no more, stop listening."""
    if peers is None:
        return
    use_peers(None)
    peers.stop()


def write_local(db: Database, config: Config) -> bool:
    """Rewrite this host's snapshot from the committed state. False when publishing is off."""
    global _last_over_budget
    path = config.gateway_identity
    if path is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path), db.connected():
        over = over_budget_user_ids()
        write_snapshot(path, _identities(config, over), litellm_config.unavailable_models(config))
        _last_over_budget = over
    return True


def publish(db: Database, config: Config) -> bool:
    """Rewrite the snapshot from the committed state, and have the other gateway hosts rewrite
    theirs (when they share the database). False when publishing is off."""
    if not write_local(db, config):
        return False
    if _peers is not None:
        _peers.announce()
    return True


def publish_if_budgets_changed(db: Database, config: Config) -> bool:
    """After usage was recorded: publish only when a user crossed (or left) their budget."""
    if config.gateway_identity is None:
        return False
    with db.connected():
        over = over_budget_user_ids()
    if over == _last_over_budget:
        return False
    log.info("daily token budgets used up now: user ids %s", sorted(over) or "none")
    return publish(db, config)
