"""The settings database on the real host: every acknowledged write survives a ``kill -9`` of
nova-settings in the middle of 1000 PATCHes, and a read sees a write made on the host at once
(the hardened service's read cache). The tests print their figures (``-s`` shows them).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import httpx
import pytest

from .hostlib import (
    DB,
    SETTINGS,
    Host,
    db_snapshot,
    get_ok,
    make_users,
    python_as_db_owner,
    wait_healthy,
)

pytestmark = pytest.mark.host

# Runs on the host as the database's owner: one user's temperature changed behind the service.
_SET_TEMPERATURE = f"""
import sqlite3
c = sqlite3.connect({DB!r}, timeout=30)
c.execute(
    'UPDATE user_settings SET llm_temperature = ?, revision = revision + 1'
    ' WHERE user_id = (SELECT id FROM "user" WHERE name = ?)', ({{value}}, {{name!r}}))
c.commit()
"""


def _unit(host: Host, unit: str) -> dict[str, str]:
    return host.unit(unit, "MainPID", "NRestarts", "InvocationID", "ActiveState")


def test_kill_settings_during_writes(host: Host) -> None:
    """``kill -9`` of nova-settings' MainPID while 1000 PATCHes are in flight from 8 threads,
    each thread its own user (created for the test) writing a strictly increasing
    ``llm_temperature`` (0.002 steps), one request at a time; the kill comes once 300 writes
    have been acknowledged. After systemd has restarted the service: for every user the row
    (through the API and directly in SQLite) has a revision ≥ its last acknowledged one and a
    temperature ≥ its last acknowledged one (equal when the revisions are equal); no two
    acknowledged writes share a revision; ``PRAGMA integrity_check`` is ok."""
    total, n_threads, kill_after = 1000, 8, 300
    wait_healthy(host)
    names = [f"rel-writer-{k}" for k in range(n_threads)]
    tokens = make_users(host, names)
    before = _unit(host, "nova-settings.service")

    lock = threading.Lock()
    issued = itertools.count(1)
    acks: dict[str, list[tuple[int, float]]] = {name: [] for name in names}  # (rev, value)
    outcomes: Counter[str] = Counter()
    steps: dict[str, int] = dict.fromkeys(names, 0)

    def worker(name: str) -> None:
        with httpx.Client(
            base_url=host.settings_url,
            headers={"Authorization": f"Bearer {tokens[name]}"},
            timeout=10,
        ) as client:
            while True:
                with lock:
                    if next(issued) > total:
                        return
                steps[name] += 1
                value = round(steps[name] * 0.002, 3)  # ≤ 2.0: at most 1000 per user
                try:
                    response = client.patch(SETTINGS, json={"llm_temperature": value})
                except httpx.HTTPError as exc:
                    with lock:
                        outcomes[type(exc).__name__] += 1
                    time.sleep(0.5)
                    continue
                with lock:
                    if 200 <= response.status_code < 300:
                        body = response.json()
                        acks[name].append((body["revision"], body["llm_temperature"]))
                        outcomes["ok" if body["llm_temperature"] == value else "wrong value"] += 1
                    else:
                        outcomes[str(response.status_code)] += 1
                        time.sleep(0.5)

    threads = [threading.Thread(target=worker, args=(name,)) for name in names]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    while outcomes["ok"] < kill_after and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    acked_before_kill = outcomes["ok"]
    host.ssh(f"kill -9 {before['MainPID']}")
    acked_at_kill = outcomes["ok"]
    for thread in threads:
        thread.join(timeout=300)
    took = time.monotonic() - start

    t0 = time.monotonic()
    while not get_ok(f"{host.settings_url}/health"):
        assert time.monotonic() - t0 < 60, "nova-settings not back within 60 s"
        time.sleep(0.2)
    back = time.monotonic() - t0
    after = _unit(host, "nova-settings.service")
    db = db_snapshot(host)
    api = {}
    for name in names:
        with httpx.Client(
            base_url=host.settings_url, headers={"Authorization": f"Bearer {tokens[name]}"}
        ) as client:
            api[name] = client.get(SETTINGS).json()

    print(
        f"\n[crash] {total} PATCHes from {n_threads} threads in {took:.1f} s: {dict(outcomes)};"
        f" kill -9 of PID {before['MainPID']} after {acked_before_kill} acks"
        f" ({acked_at_kill} when it returned); service back (PID {after['MainPID']},"
        f" NRestarts {before['NRestarts']} -> {after['NRestarts']}) {back:.1f} s after the"
        f" last request; integrity_check: {db['integrity']}",
        flush=True,
    )
    for name in names:
        last = max(acks[name]) if acks[name] else (0, 0.0)
        row = db["by_name"][name]
        print(
            f"[crash] {name}: {len(acks[name])} acked, last ack rev {last[0]} value {last[1]};"
            f" db rev {row['revision']} value {row['llm_temperature']}",
            flush=True,
        )

    assert sum(outcomes.values()) == total
    assert "wrong value" not in outcomes
    assert acked_before_kill >= kill_after and outcomes["ok"] < total  # the kill hit writes
    assert after["MainPID"] != before["MainPID"] and after["ActiveState"] == "active"
    assert int(after["NRestarts"]) > int(before["NRestarts"])
    assert db["integrity"] == ["ok"]
    for name in names:
        revisions = [rev for rev, _ in acks[name]]
        assert len(revisions) == len(set(revisions)), f"{name}: two acks share a revision"
        assert revisions == sorted(revisions)
        row = db["by_name"][name]
        assert (row["revision"], row["llm_temperature"]) == (
            api[name]["revision"],
            api[name]["llm_temperature"],
        )
        if not acks[name]:
            continue
        last_rev, last_value = acks[name][-1]
        assert row["revision"] >= last_rev, f"{name}: acknowledged write lost"
        assert row["llm_temperature"] >= last_value, f"{name}: acknowledged value lost"
        if row["revision"] == last_rev:
            assert row["llm_temperature"] == last_value


def test_settings_read_sees_a_write_made_on_the_host_at_once(host: Host) -> None:
    """The settings read is served from memory between commits (auth.UserLookup, checked
    against SQLite's WAL-index header). Under the hardened unit: the cache is on (the running
    service logged no "cache is off"), and a row changed on the host behind the service's back
    (sqlite3, as the database's owner) is what the very next read returns, ten times over."""
    wait_healthy(host)
    token = make_users(host, ["cache-reader"])["cache-reader"]
    invocation = host.unit("nova-settings.service", "InvocationID")["InvocationID"]
    journal = host.ssh(f"journalctl _SYSTEMD_INVOCATION_ID={invocation} --no-pager -o cat")
    assert "nova-settings" in journal and "cache is off" not in journal
    with httpx.Client(
        base_url=host.settings_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        for step in range(1, 11):
            assert client.get(SETTINGS).status_code == 200  # now in the cache
            python_as_db_owner(host, _SET_TEMPERATURE.format(value=step / 10, name="cache-reader"))
            assert client.get(SETTINGS).json()["llm_temperature"] == step / 10
