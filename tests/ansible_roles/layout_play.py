"""Running a probe playbook (playbooks/) over an inventory of local "hosts": the roles' own
defaults and vars evaluated for each host as a real run evaluates them; the playbook writes what
it found under the returned directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
# Every inventory host runs here, under the test's python.
LOCAL = f"ansible_connection=local ansible_python_interpreter={sys.executable}"


def run_play(tmp_path: Path, playbook: str, inventory: str, extra_vars: dict | None = None) -> Path:
    """Run ``playbooks/<playbook>`` over ``inventory`` (and ``extra_vars``, as ``-e``); the
    directory it wrote to (out_dir)."""
    (tmp_path / "inventory.ini").write_text(inventory)
    (tmp_path / "extra-vars.json").write_text(json.dumps(extra_vars or {}))
    out = tmp_path / "out"
    out.mkdir()
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_ROLES_PATH": str(ROOT / "ansible" / "roles"),
    }
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "inventory.ini"), str(PLAYBOOKS / playbook),
         "-e", f"out_dir={out}", "-e", f"@{tmp_path / 'extra-vars.json'}"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return out
