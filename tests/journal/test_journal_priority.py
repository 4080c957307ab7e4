"""Errors reach the journal at priority err: stderr lines carry a <N> prefix under journald."""

import os
import subprocess
import sys
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"

PROGRAM = """
import logging, sys
import nova_journal
nova_journal.install()
handler = logging.StreamHandler(sys.stderr)
handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
log = logging.getLogger("demo")
log.addHandler(handler)
log.setLevel(logging.DEBUG)
log.error("disk full")
log.warning("slow")
log.info("started")
log.debug("detail")
"""


def run(env_extra: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    env.update(PYTHONPATH=str(SERVICES), **env_extra)
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True
    )
    return out.stderr.splitlines()


def test_under_the_journal_each_line_carries_its_priority():
    assert run({"JOURNAL_STREAM": "8:12345"}) == [
        "<3>demo: disk full",
        "<4>demo: slow",
        "<6>demo: started",
        "<7>demo: detail",
    ]


def test_on_a_terminal_lines_stay_plain():
    assert run({}) == ["demo: disk full", "demo: slow", "demo: started", "demo: detail"]
