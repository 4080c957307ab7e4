"""Role nova_firewall's rules, rendered for a four-host layout and loaded into the kernel's
nftables in a network namespace of their own (unshare --net: nothing of this machine's network
is touched). Loopback holds all of 127/8, so each "host" is one address there and a connection
can come from any of them: what the rules accept and drop is what a real host's would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .layout_play import LOCAL, run_play

PROBE = Path(__file__).resolve().parent / "netns_probe.py"

INVENTORY = (
    "[nova_llm_hosts]\n"
    f"gpu1 nova_private_address=127.0.0.11 {LOCAL}\n"
    f"gpu2 nova_private_address=127.0.0.12 {LOCAL}\n"
    "[nova_gateway_hosts]\n"
    f"gw1 nova_private_address=127.0.0.21 {LOCAL}\n"
    f"gw2 nova_private_address=127.0.0.22 {LOCAL}\n"
)
OUTSIDER = "127.0.0.99"


@pytest.fixture(autouse=True)
def _netns_tools() -> None:
    if os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None:
        pytest.fail("needs root, nft and unshare: run scripts/test (it installs nftables)")


def render(tmp_path: Path, inventory: str) -> Path:
    return run_play(tmp_path, "firewall.yml", inventory)


def probe(rules: Path, listen: list[str], tries: list[tuple[str, str]]) -> dict:
    """In a fresh network namespace: load ``rules``, listen on ``listen`` (ADDRESS:PORT), try
    each (source, ADDRESS:PORT); what was reached."""
    out = subprocess.run(
        ["unshare", "--net", sys.executable, str(PROBE), str(rules), json.dumps(listen),
         json.dumps(tries)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_each_port_is_reached_only_by_the_hosts_that_need_it(tmp_path: Path) -> None:
    out = render(tmp_path, INVENTORY)
    gpu1 = "127.0.0.11:8080"
    got = probe(
        out / "gpu1.nft",
        [gpu1, "127.0.0.11:2222"],
        [
            ("127.0.0.21", gpu1), ("127.0.0.22", gpu1),  # the gateway hosts
            ("127.0.0.11", gpu1), ("127.0.0.1", gpu1),  # the host itself
            ("127.0.0.12", gpu1), (OUTSIDER, gpu1),  # the other inference host, anyone else
            (OUTSIDER, "127.0.0.11:2222"),  # a port that is not ours: left alone
        ],
    )  # fmt: skip
    assert got == {
        f"127.0.0.21->{gpu1}": True, f"127.0.0.22->{gpu1}": True,
        f"127.0.0.11->{gpu1}": True, f"127.0.0.1->{gpu1}": True,
        f"127.0.0.12->{gpu1}": False, f"{OUTSIDER}->{gpu1}": False,
        f"{OUTSIDER}->127.0.0.11:2222": True,
    }  # fmt: skip
    # The state host (gw1): Postgres and Redis for the gateway hosts only; the gateway and the
    # settings service for the front door (gw1 itself) only.
    pg, redis, gateway = "127.0.0.21:5432", "127.0.0.21:6379", "127.0.0.22:4000"
    got = probe(
        out / "gw1.nft",
        [pg, redis],
        [("127.0.0.22", pg), ("127.0.0.11", pg), ("127.0.0.22", redis), (OUTSIDER, redis)],
    )
    assert got == {
        f"127.0.0.22->{pg}": True, f"127.0.0.11->{pg}": False,
        f"127.0.0.22->{redis}": True, f"{OUTSIDER}->{redis}": False,
    }  # fmt: skip
    got = probe(out / "gw2.nft", [gateway], [("127.0.0.21", gateway), ("127.0.0.11", gateway)])
    assert got == {f"127.0.0.21->{gateway}": True, f"127.0.0.11->{gateway}": False}


def test_loading_twice_keeps_one_table_and_one_host_needs_none(tmp_path: Path) -> None:
    (tmp_path / "layout").mkdir()
    out = render(tmp_path / "layout", INVENTORY)
    tables = subprocess.run(
        ["unshare", "--net", "sh", "-ec",
         f"nft -f {out / 'gpu1.nft'}; nft -f {out / 'gpu1.nft'}; nft list tables;"
         " nft delete table inet nova; echo after; nft list tables"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert tables.split() == ["table", "inet", "nova", "after"]
    (tmp_path / "solo").mkdir()
    solo = render(tmp_path / "solo", f"[nova_llm_hosts]\nsolo {LOCAL}\n")
    assert json.loads((solo / "solo.enabled").read_text()) is False
