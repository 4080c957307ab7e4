"""Users through the gateway: code that LiteLLM loads into nova-litellm.service.

LiteLLM's own per-user features need its Prisma database, which cannot run here, so identity
goes through LiteLLM's documented extension points instead, backed by the settings database
(through the snapshot it publishes, nova_common/gateway_identity.py):

* ``auth.user_api_key_auth`` (``general_settings.custom_auth``, mode ``auto``): a user's
  gateway key is admitted or refused here (401 revoked/disabled, 403 route, 429 budget); any
  other key, the master key included, goes on to LiteLLM's own auth;
* ``hooks.proxy_hooks`` (``litellm_settings.callbacks``): applies the user's settings before
  the call (``model="default"``, temperature, max_tokens), names the model that answered in
  ``x-nova-model``, and counts usage;
* ``usage.UsageRecorder``: sends those counts to the settings service in batches, off the
  request path.

Imports only the standard library, httpx and LiteLLM (this runs in the gateway's venv).
"""
