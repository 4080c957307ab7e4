"""Render the gateway's LiteLLM config from the one shared template.

The template (templates/etc/nova/litellm/config.yaml.j2, installed on the host by Ansible) and
its context (a JSON file written by Ansible: the local model, the Gemini models to offer, the
timeouts) are fixed at provisioning. What changes at run time is whether a Google key is stored:
Gemini models, and the fallbacks to and from them, are rendered only while one is.

The result is written atomically and only when its content changes; a systemd path unit
watching it (and the stored Google key) restarts nova-litellm.service. Both Ansible (through
``nova-settings-admin render-gateway-config``) and the settings service (after a key change)
render through this module, so they cannot disagree.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import jinja2
import yaml

from . import keystore
from .config import Config

log = logging.getLogger(__name__)


class GatewayConfigError(RuntimeError):
    """The gateway config could not be rendered; the file in place is unchanged."""


def build_context(config: Config) -> dict[str, Any]:
    if config.gateway_context is None:
        raise GatewayConfigError("NOVA_GATEWAY_CONTEXT is not set")
    try:
        context = json.loads(config.gateway_context.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GatewayConfigError(f"cannot read {config.gateway_context}: {exc}") from None
    if not keystore.has_key(config.secrets_dir, "google"):
        context["gemini_models"] = []
    return context


def render(config: Config) -> str:
    if config.gateway_template is None:
        raise GatewayConfigError("NOVA_GATEWAY_TEMPLATE is not set")
    try:
        source = config.gateway_template.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(f"cannot read {config.gateway_template}: {exc}") from None
    env = jinja2.Environment(  # noqa: S701 - YAML output, not HTML
        undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True
    )
    try:
        text = env.from_string(source).render(gateway=build_context(config))
        parsed = yaml.safe_load(text)
    except (jinja2.TemplateError, yaml.YAMLError) as exc:
        raise GatewayConfigError(f"gateway config does not render: {exc}") from None
    if not isinstance(parsed, dict) or not parsed.get("model_list"):
        raise GatewayConfigError("rendered gateway config has no model_list")
    return text


def apply(config: Config) -> bool:
    """Render and write the config if it changed. True when the file was (re)written."""
    text = render(config)
    out = config.gateway_config_path
    try:
        if out.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    out.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    keystore.write_secret_file(out, text)
    log.info("gateway config rewritten (%s)", out)
    return True


def enabled(config: Config) -> bool:
    return config.gateway_template is not None and config.gateway_context is not None
