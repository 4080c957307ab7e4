"""Moved to :mod:`nova_common.journal`; this alias stays only until nova_settings imports it
from there (its logging setup still says ``import nova_journal``). Delete it then, with its
entry in the nova_host role's "Copy the services' code" loop."""

from nova_common.journal import install, priority

__all__ = ["install", "priority"]
