"""Storing or removing a provider key, and what follows: the gateway config is re-rendered.

The routes and nothing else call these; the key store itself knows nothing of the gateway.
"""

from __future__ import annotations

import logging

from ..core.config import Config, Provider
from . import keystore, litellm_config

log = logging.getLogger(__name__)


def store_key(config: Config, provider: Provider, key: str) -> bool:
    """Store ``key`` (blocking). True when it was new; then the gateway config follows."""
    changed = keystore.store_key(config.secrets_dir, provider, key)
    if changed:
        keys_changed(config, provider, "stored")
    return changed


def delete_key(config: Config, provider: Provider) -> bool:
    """Remove the stored key (blocking). True when there was one; then the config follows."""
    removed = keystore.delete_key(config.secrets_dir, provider)
    if removed:
        keys_changed(config, provider, "removed")
    return removed


def keys_changed(config: Config, provider: Provider, action: str) -> None:
    """After a key was stored, replaced or removed: re-render the gateway config.

    The config changes only when Google keys come or go; a replaced key is picked up by the
    path unit that watches the key file. Never pass the key itself here.
    """
    log.info("api key for %s %s", provider, action)
    if provider != "google" or not litellm_config.enabled(config):
        return
    try:
        if litellm_config.apply(config):
            log.info("gateway config re-rendered after the %s key was %s", provider, action)
    except litellm_config.GatewayConfigError as exc:
        log.error("gateway config not re-rendered: %s", exc)
