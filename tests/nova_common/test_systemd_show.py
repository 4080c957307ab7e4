"""nova_common.systemd: systemctl show parsed once; a missing or failing systemctl is a reason."""

from __future__ import annotations

import stat
from pathlib import Path

from nova_common import systemd

TWO_UNITS = """Id=a.service
ActiveState=active
ExecStart={ path=/bin/x ; argv[]=/bin/x --a=b ; }

Id=b.service
ActiveState=inactive
"""


def fake_systemctl(tmp_path: Path, stdout: str, rc: int = 0, stderr: str = "") -> str:
    (tmp_path / "out").write_text(stdout)
    (tmp_path / "err").write_text(stderr)
    script = tmp_path / "systemctl"
    script.write_text(
        f"#!/bin/sh\necho \"$@\" > '{tmp_path}/args'\n"
        f"cat '{tmp_path}/out'; cat '{tmp_path}/err' >&2; exit {rc}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_parse_show_gives_one_dict_per_unit_and_keeps_everything_after_the_first_equals():
    assert systemd.parse_show(TWO_UNITS) == [
        {
            "Id": "a.service",
            "ActiveState": "active",
            "ExecStart": "{ path=/bin/x ; argv[]=/bin/x --a=b ; }",
        },
        {"Id": "b.service", "ActiveState": "inactive"},
    ]
    assert systemd.parse_show("") == []


def test_show_asks_for_the_properties_of_each_unit(tmp_path):
    tool = fake_systemctl(tmp_path, TWO_UNITS)
    result = systemd.show(["a.service", "b.service"], ["Id", "ActiveState"], systemctl=tool)
    assert result.ok
    assert [u["ActiveState"] for u in result.units] == ["active", "inactive"]
    assert (tmp_path / "args").read_text().split() == [
        "show", "--no-pager", "-p", "Id,ActiveState", "--", "a.service", "b.service",
    ]  # fmt: skip


def test_a_missing_block_is_an_error_not_a_misattribution(tmp_path):
    tool = fake_systemctl(tmp_path, "Id=a.service\nActiveState=active\n")
    result = systemd.show(["a.service", "b.service"], ["Id"], systemctl=tool)
    assert not result.ok and result.units == ()
    assert "1 blocks for 2 units" in result.error


def test_failures_are_reasons(tmp_path):
    missing = systemd.show(["a.service"], ["Id"], systemctl=str(tmp_path / "nope"))
    assert missing.error == f"{tmp_path / 'nope'} not found"
    tool = fake_systemctl(tmp_path, "", rc=1, stderr="Failed to connect to bus\n")
    failed = systemd.show(["a.service"], ["Id"], systemctl=tool)
    assert failed.error == f"{tool} exit 1: Failed to connect to bus"
    assert systemd.show([], ["Id"], systemctl=tool) == systemd.ShowResult(())


def test_a_hanging_systemctl_times_out(tmp_path):
    script = tmp_path / "systemctl"
    script.write_text("#!/bin/sh\nexec sleep 5\n")
    script.chmod(0o755)
    result = systemd.show(["a.service"], ["Id"], systemctl=str(script), timeout=0.2)
    assert result.error == f"{script} did not answer within 0.2 s"


def test_show_value(tmp_path):
    tool = fake_systemctl(tmp_path, "active\n")
    out = systemd.show_value("a.service", "ActiveState", systemctl=tool)
    assert out.ok and out.stdout == "active"
    assert (tmp_path / "args").read_text().split() == [
        "show", "--no-pager", "-P", "ActiveState", "--", "a.service",
    ]  # fmt: skip
