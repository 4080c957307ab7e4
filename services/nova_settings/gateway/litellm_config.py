"""Render the gateway's LiteLLM config from the template shipped in this package.

The template (``litellm-config.yaml.j2`` beside this module) is fixed by the release, and its
context (a JSON file written by Ansible, NOVA_GATEWAY_CONTEXT: the local model, the Gemini
models to offer, the timeouts) by provisioning. What changes at run time is whether a Google
key is stored: Gemini models, and the fallbacks to and from them, are rendered only while one
is.

The result is written atomically and only when its content changes; a systemd path unit
watching it (and the stored Google key) restarts nova-litellm.service. Provisioning (Ansible
runs ``nova-settings-admin render-gateway-config``) and the service (after a key change,
gateway/key_events.py) both render through this module, so they cannot disagree.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from nova_common.files import write_atomic

from ..core.config import Config
from . import keystore

log = logging.getLogger(__name__)

TEMPLATE = "litellm-config.yaml.j2"

# The one Jinja environment the template is rendered with (YAML out, not HTML: no escaping).
_JINJA = jinja2.Environment(  # noqa: S701
    undefined=jinja2.StrictUndefined, trim_blocks=True, keep_trailing_newline=True
)


class GatewayConfigError(RuntimeError):
    """The gateway config could not be rendered; the file in place is unchanged."""


def template_source() -> str:
    return resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")


def render_template(context: dict[str, Any]) -> str:
    """The config text for a ``gateway`` context (raises jinja2.TemplateError)."""
    return _JINJA.from_string(template_source()).render(gateway=context)


NO_GOOGLE_KEY = "no Google API key is stored (an admin can store one)"
NOT_OFFERED = "the gateway no longer offers this model"

_context_cache: dict[Path, tuple[tuple[int, int], dict[str, Any]]] = {}


def _read_context(path: Path) -> dict[str, Any]:
    """The context file, parsed; re-read only when it changed (it is read per settings read)."""
    try:
        st = path.stat()
        cached = _context_cache.get(path)
        if cached is not None and cached[0] == (st.st_ino, st.st_mtime_ns):
            return dict(cached[1])
        context = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise GatewayConfigError(f"cannot read {path}: {exc}") from None
    _context_cache[path] = ((st.st_ino, st.st_mtime_ns), context)
    return dict(context)


def build_context(config: Config) -> dict[str, Any]:
    if config.gateway_context is None:
        raise GatewayConfigError("NOVA_GATEWAY_CONTEXT is not set")
    context = _read_context(config.gateway_context)
    if not keystore.has_key(config.secrets_dir, "google"):
        context["gemini_models"] = []
    return context


def unavailable_models(config: Config) -> dict[str, str]:
    """Models of the context that cannot serve requests now, with the reason: the Gemini
    models while no Google key is stored (the rendered config then leaves them out)."""
    if config.gateway_context is None or keystore.has_key(config.secrets_dir, "google"):
        return {}
    try:
        names = _read_context(config.gateway_context).get("gemini_models", [])
    except GatewayConfigError:
        return {}
    return dict.fromkeys(names, NO_GOOGLE_KEY)


def unavailable_reason(config: Config, model: str | None) -> str | None:
    """Why a saved ``model`` cannot serve requests now, or None when it can (or when this
    host renders no gateway config, so nothing is known)."""
    if config.gateway_context is None or model is None or model in config.local_models:
        return None
    try:
        context = _read_context(config.gateway_context)
    except GatewayConfigError:
        return None
    if model not in context.get("gemini_models", []):
        return NOT_OFFERED
    return unavailable_models(config).get(model)


def render(config: Config) -> str:
    context = build_context(config)
    try:
        text = render_template(context)
        parsed = yaml.safe_load(text)
    except (OSError, jinja2.TemplateError, yaml.YAMLError) as exc:
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
    write_atomic(out, text, mode=0o600)
    log.info("gateway config rewritten (%s)", out)
    return True


def enabled(config: Config) -> bool:
    return config.gateway_context is not None
