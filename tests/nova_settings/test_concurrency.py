"""Concurrent writers: every PATCH lands, none is lost (BEGIN IMMEDIATE read-modify-write)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import LOCAL_MODEL

N = 50


def test_concurrent_patches_of_different_fields_all_land(service, client, fresh_settings):
    start_revision = fresh_settings["revision"]
    barrier = threading.Barrier(N)

    def patch(i: int) -> tuple[dict, dict]:
        body = {"llm_temperature": round(i / 50, 2)} if i % 2 else {"llm_max_tokens": 100 + i}
        with httpx.Client(
            base_url=service.url,
            headers={"authorization": f"Bearer {service.token}"},
            timeout=30,
            trust_env=False,
        ) as c:
            barrier.wait()
            r = c.patch("/api/user-settings/", json=body)
        assert r.status_code == 200, r.text
        return body, r.json()

    with ThreadPoolExecutor(N) as pool:
        results = list(pool.map(patch, range(N)))

    # Writes are serialised: revisions are exactly start+1 .. start+N, one per PATCH.
    revisions = sorted(out["revision"] for _, out in results)
    assert revisions == list(range(start_revision + 1, start_revision + N + 1))

    # Replaying the PATCHes in revision order must give every answer and the final row.
    state = {"llm_model": LOCAL_MODEL, "llm_temperature": 0.6, "llm_max_tokens": 2048}
    for body, out in sorted(results, key=lambda item: item[1]["revision"]):
        state.update(body)
        assert {k: out[k] for k in state} == state, (body, out)
    final = client.get("/api/user-settings/").json()
    assert {k: final[k] for k in state} == state
    assert service.db_row() == (
        state["llm_model"],
        state["llm_temperature"],
        state["llm_max_tokens"],
        start_revision + N,
    )


def test_concurrent_users_do_not_interfere(service, tmp_path):
    tokens = []
    for i in range(4):
        path = tmp_path / f"u{i}"
        service.admin("ensure-user", f"user{i}", "--token-file", str(path))
        tokens.append(path.read_text().strip())

    def work(i: int) -> None:
        with service.client(tokens[i % 4]) as c:
            r = c.patch("/api/user-settings/", json={"llm_max_tokens": 1000 + i})
            assert r.status_code == 200, r.text

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(32)))
    for i in range(4):
        with service.client(tokens[i]) as c:
            assert c.get("/api/user-settings/").json()["revision"] == 8
