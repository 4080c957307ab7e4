"""The identity snapshot's format, key format and reader (nova_common/gateway_identity.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nova_common.gateway_identity import (
    Identity,
    SnapshotError,
    SnapshotReader,
    generate_key,
    hash_key,
    looks_like_key,
    next_utc_midnight,
    write_snapshot,
)


def ident(name: str = "bob", **kw: object) -> Identity:
    base = dict(
        user_id=7,
        name=name,
        role="user",
        disabled=False,
        model=None,
        temperature=0.5,
        max_tokens=64,
        daily_token_budget=None,
        over_budget_until=None,
    )
    return Identity(**{**base, **kw})


def test_keys_have_a_recognisable_shape():
    key = generate_key()
    assert looks_like_key(key) and key.startswith("nk-")
    for bad in ("nk-short", "sk-" + key[3:], key + "x", key[:-1] + "é", ""):
        assert not looks_like_key(bad)


def test_the_reader_sees_every_replacement_and_refuses_a_broken_file(tmp_path):
    path = tmp_path / "identity.json"
    reader = SnapshotReader(path)
    with pytest.raises(SnapshotError):
        reader.lookup(generate_key())
    first, second = generate_key(), generate_key()
    write_snapshot(path, {hash_key(first): ident()}, {"gemini-x": "no key"})
    assert reader.lookup(first).name == "bob"
    assert reader.lookup(second) is None
    assert reader.unavailable_reason("gemini-x") == "no key"
    write_snapshot(path, {hash_key(second): ident("carol", disabled=True)}, {})
    assert reader.lookup(first) is None
    assert reader.lookup(second).disabled is True
    assert reader.unavailable_reason("gemini-x") is None
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    path.write_text("{not json")
    with pytest.raises(SnapshotError):
        reader.lookup(second)


def test_over_budget_ends_when_the_day_does():
    until = next_utc_midnight()
    blocked = ident(daily_token_budget=10, over_budget_until=until.isoformat())
    assert blocked.over_budget()
    assert not blocked.over_budget(until + timedelta(seconds=1))
    assert until.tzinfo is UTC and until > datetime.now(UTC)
    assert not ident().over_budget()
