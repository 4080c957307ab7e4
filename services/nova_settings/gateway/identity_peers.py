"""Every gateway host's identity snapshot kept current when several share one Postgres.

Each gateway host runs its own settings service, which writes that host's snapshot (identity.py)
for that host's gateway. With the database shared, a change made through one host (a key rotated,
a user disabled, a budget used up) must reach the other hosts' snapshots before the API call
answers, so that every gateway refuses a rotated key on its very next request. Postgres carries
the news, so no host needs to reach another's settings service:

- every settings service keeps one connection that LISTENs on ``nova_identity`` (its
  application_name is ``APP_NAME``, so the others can count it in ``pg_stat_activity``);
- after writing its own snapshot the writer sends ``NOTIFY nova_identity, '<token>'`` and waits,
  at most ``ANNOUNCE_WAIT_S``, until every other listener has answered on ``nova_identity_ack``;
- a listener answers after rewriting its host's snapshot from the committed state (several
  announcements that arrive together: one rewrite, all answered);
- a listener that does not answer in time is named in the journal; its host catches up with the
  next change it hears of, when its connection comes back (it rewrites on every reconnect), or
  when the service restarts (every start publishes).

SQLite is one host's database: nothing of this runs there.
"""

from __future__ import annotations

import itertools
import logging
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions

from ..core.db import Database

log = logging.getLogger(__name__)

CHANNEL = "nova_identity"
ACK_CHANNEL = "nova_identity_ack"
APP_NAME = "nova-settings-identity"
# How long a change waits for the other hosts' snapshots: a rewrite takes milliseconds, so
# this only bounds an API call when a peer is hung or cut off.
ANNOUNCE_WAIT_S = 2.0
RECONNECT_S = 1.0


class IdentityPeers:
    """This process's listener, and the announcements it makes and waits for."""

    def __init__(
        self,
        db: Database,
        dbname: str,
        connect_params: dict[str, Any],
        rewrite: Callable[[], object],
    ) -> None:
        self._db = db
        self._connect_params = {**connect_params, "dbname": dbname, "application_name": APP_NAME}
        self._rewrite = rewrite
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._pid: int | None = None  # the listener's backend pid: names this process
        self._tokens = itertools.count(1)
        self._acks: dict[str, set[int]] = {}
        self._acked = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="identity-peers", daemon=True)

    def start(self, timeout: float = 10.0) -> bool:
        """Start listening; True once the listener is connected (within ``timeout``)."""
        self._thread.start()
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # The writer's side (any thread with the settings database at hand).

    def announce(self) -> list[int]:
        """Tell the other hosts the committed state changed and wait until each has rewritten
        its snapshot. Returns the backend pids of the listeners that did not answer in time."""
        me = self._pid
        if me is None:  # not connected (the database is away): nothing to tell anyone through
            log.warning("identity change not announced to other gateway hosts: not listening")
            return []
        token = f"{me}.{next(self._tokens)}"
        with self._acked:
            self._acks[token] = set()
        try:
            with self._db.connected():
                peers = self._listeners() - {me}
                if not peers:
                    return []
                self._db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, token))
            deadline = time.monotonic() + ANNOUNCE_WAIT_S
            with self._acked:
                while not peers <= self._acks[token]:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._acked.wait(left)
                missing = peers - self._acks[token]
            if missing:
                with self._db.connected():
                    missing &= self._listeners()  # those that left meanwhile are not late
            if missing:
                log.warning(
                    "identity change: %d other gateway host(s) did not confirm within %.0f s"
                    " (listener pids %s); they catch up with the next change or restart",
                    len(missing),
                    ANNOUNCE_WAIT_S,
                    sorted(missing),
                )
            return sorted(missing)
        finally:
            with self._acked:
                self._acks.pop(token, None)

    def _listeners(self) -> set[int]:
        rows = self._db.execute_sql(
            "SELECT pid FROM pg_catalog.pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (APP_NAME,),
        ).fetchall()
        return {int(row[0]) for row in rows}

    # The listener's side (its own thread and connection).

    def _run(self) -> None:
        connected_before = False
        while not self._stop.is_set():
            conn = None
            try:
                conn = psycopg2.connect(**self._connect_params)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANNEL}; LISTEN {ACK_CHANNEL}")
                self._pid = conn.get_backend_pid()
                if connected_before:  # announcements made while away were missed
                    log.info("identity listener reconnected; rewriting the snapshot")
                    try:
                        self._rewrite()
                    except Exception:
                        log.exception("identity snapshot not rewritten after reconnecting")
                connected_before = True
                self._ready.set()
                self._listen(conn)
            except (psycopg2.Error, OSError) as exc:
                if not self._stop.is_set():
                    log.warning("identity listener: %s; reconnecting", str(exc).strip())
            finally:
                self._pid = None
                if conn is not None:
                    conn.close()
            self._stop.wait(RECONNECT_S)

    def _listen(self, conn: psycopg2.extensions.connection) -> None:
        while not self._stop.is_set():
            if select.select([conn], [], [], 1.0) == ([], [], []):
                continue
            conn.poll()
            announced: list[str] = []
            while conn.notifies:
                note = conn.notifies.pop(0)
                if note.channel == ACK_CHANNEL:
                    self._got_ack(note.payload)
                elif not note.payload.startswith(f"{self._pid}."):  # not our own
                    announced.append(note.payload)
            if announced:
                try:
                    self._rewrite()
                except Exception:  # unanswered: the writer names this host in its journal
                    log.exception("identity snapshot not rewritten after a change elsewhere")
                    continue
                with conn.cursor() as cur:
                    for token in announced:
                        cur.execute(
                            "SELECT pg_notify(%s, %s)", (ACK_CHANNEL, f"{token} {self._pid}")
                        )

    def _got_ack(self, payload: str) -> None:
        token, _, pid = payload.partition(" ")
        with self._acked:
            acks = self._acks.get(token)
            if acks is not None and pid.isdigit():
                acks.add(int(pid))
                self._acked.notify_all()
