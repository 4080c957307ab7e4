"""The host tools' default unit lists name the suite the nova role decides."""

from __future__ import annotations

from pathlib import Path

import yaml

from nova_common import suite

ROOT = Path(__file__).resolve().parents[2]
NOVA_VARS = ROOT / "ansible/roles/nova/vars/main.yml"
SETTINGS_ENV = ROOT / "ansible/roles/nova_settings/templates/etc/nova/settings.env.j2"


def test_the_defaults_name_the_roles_services_in_order() -> None:
    """A host in both groups (the single-host default) runs the inference services, then the
    gateway's (tests/ansible_roles/test_layout.py evaluates the same with Ansible)."""
    role = yaml.safe_load(NOVA_VARS.read_text())
    services = (*role["nova_inference_services"], *role["nova_gateway_services"])
    assert services == suite.SERVICE_UNITS
    assert tuple(role["nova_gateway_extra_units"]) == suite.EXTRA_UNITS


def test_the_settings_env_file_passes_the_roles_list_to_both_tools() -> None:
    text = SETTINGS_ENV.read_text()
    assert "NOVA_UNITS={{ (nova_services | list" in text
    assert "NOVA_DIAGNOSE_UNITS={{ (nova_services | list + nova_suite_extra_units" in text
