"""The LiteLLM gateway as the settings service sees it: stored provider keys (``keystore``),
the gateway's config rendered from the shipped template (``litellm_config``,
``litellm-config.yaml.j2``), and what a key change sets off (``key_events``)."""
