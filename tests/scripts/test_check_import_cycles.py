"""scripts/check-import-cycles: finds cycles however they are dodged, passes a clean tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-import-cycles"


def check(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(tree)], capture_output=True, text=True, check=False
    )


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "services" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_projects_services_have_no_cycle() -> None:
    result = check(ROOT)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("no import cycles")


CYCLES = {
    "dodged inside a function": (
        {
            "pkg/__init__.py": "",
            "pkg/keystore.py": "def changed():\n    from pkg.config import render\n",
            "pkg/config.py": "from pkg import keystore\n",
        },
        "pkg.config <-> pkg.keystore",
    ),
    "for types only, through relative imports": (
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/auth.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from ..store import Store\n",
            "pkg/store.py": "from .sub.auth import check\n",
        },
        "pkg.store <-> pkg.sub.auth",
    ),
}


@pytest.mark.parametrize("case", CYCLES, ids=list(CYCLES))
def test_a_cycle_is_found_however_it_is_written(tmp_path: Path, case: str) -> None:
    files, expected = CYCLES[case]
    result = check(write(tmp_path, files))
    assert result.returncode == 1
    assert expected in result.stdout


def test_a_package_importing_its_own_modules_is_no_cycle(tmp_path: Path) -> None:
    tree = write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.app import make\n",
            "pkg/app.py": "from pkg import helpers\n",
            "pkg/helpers.py": "import os\n",
        },
    )
    result = check(tree)
    assert result.returncode == 0, result.stdout
