"""nova_common.journal: lines reach the journal with their priority, also in the gateway's venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from nova_common import journal

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
LITELLM_TASKS = ROOT / "ansible/roles/litellm/tasks"

PROGRAM = """
import logging, sys
{setup}
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
INSTALL = "import nova_common.journal; nova_common.journal.install()"
PRIORITISED = ["<3>demo: disk full", "<4>demo: slow", "<6>demo: started", "<7>demo: detail"]


def run(args: list[str], setup: str, env_extra: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "PYTHONPATH")}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, *args, "-c", PROGRAM.format(setup=setup)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stderr.splitlines()


def test_under_the_journal_each_line_carries_its_priority():
    lines = run([], INSTALL, {"PYTHONPATH": str(SERVICES), "JOURNAL_STREAM": "8:12345"})
    assert lines == PRIORITISED


def test_on_a_terminal_lines_stay_plain():
    lines = run([], INSTALL, {"PYTHONPATH": str(SERVICES)})
    assert lines == ["demo: disk full", "demo: slow", "demo: started", "demo: detail"]


def pth_line() -> str:
    """The content of the .pth file the litellm role writes (in whichever of its task files)."""
    found = []
    for path in sorted(LITELLM_TASKS.glob("*.yml")):
        tasks = yaml.safe_load(path.read_text()) or []
        tasks += [t for block in tasks for t in block.get("block", [])]
        copies = [t["ansible.builtin.copy"] for t in tasks if "ansible.builtin.copy" in t]
        found += [c["content"] for c in copies if str(c.get("dest", "")).endswith(".pth")]
    (line,) = found
    return line.replace("{{ nova_app_dir }}", str(SERVICES))


def test_the_gateway_venvs_pth_line_loads_it_with_the_standard_library_alone(tmp_path):
    """The .pth line the litellm role writes, run by ``site`` in an interpreter that has no
    site-packages (-S) and ignores PYTHONPATH (-I), with only services/ added (as the project
    is in the gateway venv): nova_common.journal needs nothing but the standard library."""
    (tmp_path / "nova.pth").write_text(pth_line())
    setup = f"import site; site.addsitedir({str(SERVICES)!r}); site.addsitedir({str(tmp_path)!r})"
    assert run(["-I", "-S"], setup, {"JOURNAL_STREAM": "8:1"}) == PRIORITISED


def test_priorities_and_log(capsys):
    assert [journal.priority(n) for n in (50, 40, 30, 20, 10, 5)] == [2, 3, 4, 6, 7, 7]
    journal.log(journal.NOTICE, "hello")
    assert capsys.readouterr().err == "<5>hello\n"
