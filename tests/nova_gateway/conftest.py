"""The settings service's stand-in upstreams, shared with tests/nova_settings: the gateway's
usage batches go to a real settings service."""

from tests.nova_settings.conftest import upstreams  # noqa: F401  (a fixture)
