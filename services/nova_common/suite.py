"""The suite's units, as the host tools name them when nothing else says.

Ansible decides the suite (``nova_services`` and ``nova_suite_extra_units`` in the nova role's
``vars/main.yml``) and writes it into ``/etc/nova/settings.env`` (``NOVA_UNITS`` for the
settings service's status, ``NOVA_DIAGNOSE_UNITS`` for nova-diagnose). These defaults serve a
process started without that file; ``tests/nova_common/test_suite.py`` checks that they name
the same units as the role.
"""

from __future__ import annotations

SERVICE_UNITS = ("nova-llama-server.service", "nova-litellm.service", "nova-settings.service")
EXTRA_UNITS = ("nova-litellm.socket", "nova-litellm-reload.path")
TARGET_UNIT = "nova-llm.target"
CHECK_UNIT = "nova-llm-check.service"
# What GET /api/system/status reports on.
STATUS_UNITS = (*SERVICE_UNITS, TARGET_UNIT)
# What nova-diagnose looks at, and collects the journal of.
DIAGNOSE_UNITS = (*SERVICE_UNITS, *EXTRA_UNITS, TARGET_UNIT, CHECK_UNIT)
