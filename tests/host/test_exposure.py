"""Exposure on the real host: ``systemd-analyze security`` of the nova units, and only loopback
listeners for the nova services.

By the rule in ``conftest.py`` these are contract checks (what the roles configure), which
Molecule's verify owns; they stay here until verify asserts them (its ``verify/exposure.yml``
prints the services' scores without asserting a bound, and no verify task checks listeners).
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from .hostlib import Host, wait_healthy

pytestmark = pytest.mark.host

NOVA_USERS = ("nova-llama", "nova-litellm", "nova-settings")


def test_systemd_exposure(host: Host) -> None:
    """``systemd-analyze security``'s overall exposure of each nova service unit: ≤ 3.0 and
    rated OK or SAFE (the root ones, which talk to systemd, included)."""
    asserted = (
        "nova-llama-server",
        "nova-litellm",
        "nova-settings",
        "nova-watchdog",
        "nova-litellm-reload",
        "nova-llm-check",
    )
    found = {}
    for unit in asserted:
        out = host.ssh(f"systemd-analyze security --no-pager {unit}.service | tail -1")
        match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", out)
        assert match, out
        found[unit] = (float(match[1]), match[2])
        print(f"\n[exposure] {unit}: {match[1]} {match[2]}", end="", flush=True)
    print(flush=True)
    for unit in asserted:
        level, rating = found[unit]
        assert level <= 3.0 and rating in ("OK", "SAFE"), (unit, level, rating)


_LISTENERS = r"""
import json, pwd, re, subprocess
out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
rows = []
for line in out.splitlines():
    fields = line.split()
    local = fields[3]
    addr, port = local.rsplit(":", 1)
    for comm, pid in re.findall(r'\("([^"]*)",pid=(\d+)', line) or [(None, None)]:
        user = None
        if pid:
            try:
                with open(f"/proc/{pid}/status") as f:
                    uid = next(int(l.split()[1]) for l in f if l.startswith("Uid:"))
                user = pwd.getpwuid(uid).pw_name
            except (OSError, KeyError):
                pass
        rows.append({"addr": addr.strip("[]"), "port": int(port), "comm": comm,
                     "pid": pid, "user": user})
print(json.dumps(rows))
"""


def test_listeners_loopback_only(host: Host) -> None:
    """From the host, ``ss -ltnpH``: every listener owned by nova-llama, nova-litellm or
    nova-settings, or on one of the fixture's service ports, is on 127.0.0.1 or ::1 (by
    default nothing of ours is public). The container shares this machine's network
    namespace, so this machine's own listeners show up too (without a process the container
    can see): they are printed as "other", not judged."""
    wait_healthy(host)
    rows = json.loads(host.ssh(f"python3 -c {shlex.quote(_LISTENERS)}"))
    ports = {host.llama_port, host.gateway_port, host.settings_port}
    ours = [r for r in rows if r["user"] in NOVA_USERS or r["port"] in ports]
    others = sorted({f"{r['addr']}:{r['port']}" for r in rows if r not in ours})
    print(f"\n[listen] {len(rows)} listeners seen from the host, {len(ours)} of nova's:")
    for r in ours:
        print(f"[listen]   {r['addr']}:{r['port']} {r['comm']} pid {r['pid']} user {r['user']}")
    print(f"[listen] other (this machine's, not the host's services): {others}", flush=True)
    assert {r["port"] for r in ours} >= ports
    for port, user in (
        (host.llama_port, "nova-llama"),
        (host.gateway_port, "nova-litellm"),
        (host.settings_port, "nova-settings"),
    ):
        assert {r["user"] for r in ours if r["port"] == port} == {user}, port
    public = [r for r in ours if r["addr"] not in ("127.0.0.1", "::1")]
    assert not public, public
