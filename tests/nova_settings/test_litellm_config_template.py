"""The LiteLLM config template (nova_settings/gateway/litellm-config.yaml.j2) renders valid config.

Rendered through the settings service's own renderer, with the Jinja settings it ships with.
"""

import pytest
import yaml

from nova_settings.gateway.litellm_config import render_template


def render(
    gemini_models: list[str],
    gemini_api_base: str = "",
    disable_cooldowns: bool = True,
    api_bases: tuple[str, ...] = ("http://127.0.0.1:8080/v1",),
    redis: str = "",
    local_models: list[dict] | None = None,
) -> dict:
    text = render_template(
        {
            "local_model": {"name": "SmolLM2-135M-Instruct", "api_bases": list(api_bases)},
            **({"local_models": local_models} if local_models is not None else {}),
            "routing_strategy": "simple-shuffle",
            "gemini_models": gemini_models,
            "gemini_api_base": gemini_api_base,
            "request_timeout_s": 60,
            "num_retries": 0,
            "allowed_fails": 1,
            "cooldown_time_s": 30,
            "disable_cooldowns": disable_cooldowns,
            "redis": redis,
        }
    )
    return yaml.safe_load(text)


def test_local_only_has_no_cloud_models_and_no_fallbacks():
    config = render([])
    assert [m["model_name"] for m in config["model_list"]] == ["SmolLM2-135M-Instruct"]
    local = config["model_list"][0]["litellm_params"]
    assert local["model"] == "openai/SmolLM2-135M-Instruct"
    assert local["api_base"] == "http://127.0.0.1:8080/v1"
    assert "fallbacks" not in config["litellm_settings"]
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert not any(k.startswith("redis") for k in config["router_settings"])


def test_several_inference_hosts_are_one_deployment_each_of_the_local_model():
    bases = ("http://10.0.0.1:8080/v1", "http://10.0.0.2:8080/v1")
    config = render(["gemini-2.5-flash"], api_bases=bases)
    local = [m for m in config["model_list"] if m["model_info"].get("local")]
    assert [m["model_name"] for m in local] == ["SmolLM2-135M-Instruct"] * 2
    assert [m["litellm_params"]["api_base"] for m in local] == list(bases)
    assert {m["litellm_params"]["api_key"] for m in local} == {"os.environ/NOVA_LLAMA_API_KEY"}
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"
    # The model group falls back as one, whatever the number of hosts.
    fallbacks = {k: v for item in config["litellm_settings"]["fallbacks"] for k, v in item.items()}
    assert fallbacks == {
        "SmolLM2-135M-Instruct": ["gemini-2.5-flash"],
        "gemini-2.5-flash": ["SmolLM2-135M-Instruct"],
    }


def test_several_gateway_hosts_share_the_router_state_in_redis_with_its_password_from_the_env():
    router = render([], redis="10.0.0.31:6379")["router_settings"]
    assert (router["redis_host"], router["redis_port"]) == ("10.0.0.31", 6379)
    assert router["redis_password"] == "os.environ/REDIS_PASSWORD"


@pytest.mark.parametrize("models", [["gemini-2.5-flash"], ["gemini-2.5-flash", "gemini-2.5-pro"]])
def test_gemini_models_fall_back_both_ways(models):
    config = render(models, gemini_api_base="http://127.0.0.1:9999/v1beta")
    names = [m["model_name"] for m in config["model_list"]]
    assert names == ["SmolLM2-135M-Instruct", *models]
    for entry in config["model_list"][1:]:
        assert entry["litellm_params"]["model"] == f"gemini/{entry['model_name']}"
        # The key is read from the environment, never written into the file.
        assert entry["litellm_params"]["api_key"] == "os.environ/GOOGLE_API_KEY"
        assert entry["litellm_params"]["api_base"] == "http://127.0.0.1:9999/v1beta"
    fallbacks = {k: v for item in config["litellm_settings"]["fallbacks"] for k, v in item.items()}
    assert fallbacks["SmolLM2-135M-Instruct"] == models
    for name in models:
        assert fallbacks[name] == ["SmolLM2-135M-Instruct"]


@pytest.mark.parametrize("disable_cooldowns", [True, False])
def test_cooldown_and_timeouts_are_rendered(disable_cooldowns):
    config = render(["gemini-2.5-flash"], disable_cooldowns=disable_cooldowns)
    assert config["router_settings"] == {
        "routing_strategy": "simple-shuffle",
        "disable_cooldowns": disable_cooldowns,
        "allowed_fails": 1,
        "cooldown_time": 30,
    }
    assert config["litellm_settings"]["request_timeout"] == 60
    assert config["litellm_settings"]["num_retries"] == 0


def test_hot_path_settings():
    config = render([])
    assert config["litellm_settings"]["turn_off_message_logging"] is True
    assert config["general_settings"]["disable_spend_logs"] is True


SEVERAL = [
    {"name": "SmolLM2-135M-Instruct"},
    {"name": "SmolLM2-135M-Instruct-Q8_0", "fallbacks": ["SmolLM2-135M-Instruct"]},
    {"name": "tiny", "fallbacks": ["gemini-2.5-flash", "gone-model"]},
]


def test_several_local_models_are_each_served_by_every_inference_host():
    bases = ("http://10.0.0.1:8080/v1", "http://10.0.0.2:8080/v1")
    config = render([], api_bases=bases, local_models=SEVERAL)
    local = [(m["model_name"], m["litellm_params"]["api_base"]) for m in config["model_list"]]
    assert local == [(m["name"], b) for m in SEVERAL for b in bases]
    assert all(
        m["litellm_params"]["model"] == f"openai/{m['model_name']}" for m in config["model_list"]
    )


def test_each_local_model_falls_back_as_its_entry_says_to_models_offered_now():
    fallbacks = lambda config: {  # noqa: E731
        k: v for item in config["litellm_settings"].get("fallbacks", []) for k, v in item.items()
    }
    # No Google key: Gemini is not offered, so only the local-to-local fallback is left.
    assert fallbacks(render([], local_models=SEVERAL)) == {
        "SmolLM2-135M-Instruct-Q8_0": ["SmolLM2-135M-Instruct"]
    }
    # With Gemini: the default model (no list of its own) falls back to Gemini, and Gemini to
    # the default local model.
    assert fallbacks(render(["gemini-2.5-flash"], local_models=SEVERAL)) == {
        "SmolLM2-135M-Instruct": ["gemini-2.5-flash"],
        "SmolLM2-135M-Instruct-Q8_0": ["SmolLM2-135M-Instruct"],
        "tiny": ["gemini-2.5-flash"],
        "gemini-2.5-flash": ["SmolLM2-135M-Instruct"],
    }
