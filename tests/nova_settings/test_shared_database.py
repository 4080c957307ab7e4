"""Two gateway hosts' settings services on one Postgres database (issue 18, part 3).

Each service writes its own host's identity snapshot, read here with the gateway's own reader
(nova_common.gateway_identity.SnapshotReader), as each host's gateway reads it. A change made
through one service must be in the other's snapshot when the API call answers; usage recorded
through both adds up; a hung peer delays a change at most ANNOUNCE_WAIT_S and catches up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nova_common.gateway_identity import SnapshotReader, utc_day
from nova_settings.gateway.identity_peers import ANNOUNCE_WAIT_S

from .conftest import LOCAL_MODEL, MASTER_KEY, Backend, Service, Upstreams, run_service


def snapshot_path(svc: Service) -> Path:
    return svc.state_dir.parent / "identity.json"


@pytest.fixture(scope="module")
def two_hosts(
    tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams, pg_cluster
) -> Iterator[tuple[Service, Service]]:
    backend = Backend("postgres", pg_cluster)
    shared = backend.database_env()  # one database for both
    services: list[Service] = []
    with contextlib.ExitStack() as stack:
        for host, admin in (("gateway-1", "alice"), ("gateway-2", "bob")):
            state = tmp_path_factory.mktemp(host) / "state"
            env = {**shared, "NOVA_GATEWAY_IDENTITY": str(state.parent / "identity.json")}
            services.append(
                stack.enter_context(
                    run_service(state, upstreams, admin, env_overrides=env, backend=backend)
                )
            )
        yield services[0], services[1]


def new_user_with_key(svc: Service, name: str) -> tuple[str, str]:
    with svc.client() as c:
        r = c.post("/api/users", json={"name": name, "role": "user"})
        assert r.status_code == 201, r.text
    token = r.json()["token"]
    with svc.client(token) as c:
        r = c.post("/api/gateway-key")
        assert r.status_code == 201, r.text
    return token, r.json()["key"]


def test_a_key_made_or_rotated_through_one_host_is_known_to_the_other_at_once(two_hosts):
    one, two = two_hosts
    at_one, at_two = SnapshotReader(snapshot_path(one)), SnapshotReader(snapshot_path(two))
    token, key = new_user_with_key(one, "roamer")
    assert at_two.lookup(key).name == "roamer"  # made through one, admitted by two
    with two.client(token) as c:  # rotated through the other host
        rotated = c.post("/api/gateway-key").json()["key"]
    assert at_one.lookup(key) is None and at_two.lookup(key) is None
    assert at_one.lookup(rotated).name == "roamer"
    with two.client(token) as c:
        r = c.put(
            "/api/user-settings/",
            json={"llm_model": LOCAL_MODEL, "llm_temperature": 0.3, "llm_max_tokens": 99},
        )
        assert r.status_code == 200, r.text
    seen = at_one.lookup(rotated)
    assert (seen.model, seen.temperature, seen.max_tokens) == (LOCAL_MODEL, 0.3, 99)
    with one.client() as admin:
        assert admin.patch("/api/users/roamer", json={"disabled": True}).status_code == 200
    assert at_two.lookup(rotated).disabled
    # The operator's CLI on host one: host two's gateway sees it when the command returns.
    subprocess.run(
        [sys.executable, "-m", "nova_settings.admin", "user", "enable", "roamer"],
        env=one.env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert not at_two.lookup(rotated).disabled


def test_usage_recorded_through_both_hosts_adds_up_and_the_budget_holds_on_both(two_hosts):
    one, two = two_hosts
    token, key = new_user_with_key(one, "spender2")
    with one.client() as admin:
        admin.patch("/api/users/spender2", json={"daily_token_budget": 10_000})
    ((user_id,),) = one.sql('SELECT id FROM "user" WHERE name = ?', ("spender2",))
    record = {
        "user_id": user_id,
        "day": utc_day(),
        "model": "m",
        "requests": 1,
        "errors": 0,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "cost": 0.25,
    }
    batches = 40  # per host, sent at the same time: concurrent read-modify-writes

    def send(svc: Service) -> None:
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        with httpx.Client(base_url=svc.url, headers=headers, trust_env=False) as gateway:
            for _ in range(batches):
                r = gateway.post("/internal/usage", json={"records": [record]})
                assert r.status_code == 204, r.text

    threads = [threading.Thread(target=send, args=(svc,)) for svc in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for svc in (one, two):
        with svc.client(token) as c:
            usage = c.get("/api/usage").json()
        assert (usage["requests"], usage["total_tokens"], usage["cost"]) == (80, 560, 20.0)
    at_one, at_two = SnapshotReader(snapshot_path(one)), SnapshotReader(snapshot_path(two))
    assert at_one.lookup(key).over_budget_until is None
    # The budget is used up by usage recorded through host two: host one refuses too.
    with two.client() as admin:
        admin.patch("/api/users/spender2", json={"daily_token_budget": 560})
    assert at_one.lookup(key).over_budget_until is not None
    assert at_two.lookup(key).over_budget_until is not None


def test_a_hung_host_delays_a_change_at_most_the_wait_and_catches_up(two_hosts):
    one, two = two_hosts
    token, key = new_user_with_key(one, "patient")
    at_two = SnapshotReader(snapshot_path(two))
    os.kill(two.proc.pid, signal.SIGSTOP)
    try:
        with one.client(token) as c:
            started = time.monotonic()
            r = c.post("/api/gateway-key")
            took = time.monotonic() - started
        assert r.status_code == 201, r.text
        assert took < ANNOUNCE_WAIT_S + 5  # bounded, not forever (generous: a shared machine)
        assert "did not confirm" in one.log_text()
        rotated = r.json()["key"]
    finally:
        os.kill(two.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while at_two.lookup(key) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert at_two.lookup(key) is None and at_two.lookup(rotated).name == "patient"
