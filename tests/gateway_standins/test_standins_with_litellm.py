"""The real LiteLLM SDK against the stand-ins: proves they speak what LiteLLM's ``gemini/`` and
``openai/`` providers send and parse, sync and async (the proxy's path), streaming included.

Needs LiteLLM: scripts/test runs it in the gateway's venv (.venv-gateway, made by
scripts/bootstrap).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from .conftest import GEMINI_KEY

litellm = pytest.importorskip("litellm")

MODEL = "gemini/gemini-2.5-flash"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a place",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "unit"],
        },
    },
}
WEATHER_ARGS = {"location": "standin", "unit": "celsius"}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def gemini_call(gemini, **kwargs: Any) -> Any:
    params: dict[str, Any] = {
        "model": MODEL,
        "api_base": gemini.base,
        "api_key": GEMINI_KEY,
        "messages": user("hello from the test"),
        "timeout": 15,
        "num_retries": 0,
    }
    return litellm.completion(**{**params, **kwargs})


def streamed(response: Any) -> tuple[str, list[dict[str, Any]], str | None, int]:
    """(text, tool calls, last finish_reason, content chunks) from a LiteLLM stream."""
    chunks = list(response)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = next((c.choices[0].finish_reason for c in reversed(chunks) if c.choices), None)
    built = litellm.stream_chunk_builder(chunks)
    calls = [
        {"name": t.function.name, "args": json.loads(t.function.arguments)}
        for t in built.choices[0].message.tool_calls or []
    ]
    pieces = sum(1 for c in chunks if c.choices and c.choices[0].delta.content)
    return text, calls, finish, pieces


# --- Gemini -----------------------------------------------------------------------------------


def test_gemini_completion_text_and_wire_format(gemini):
    response = gemini_call(gemini)
    assert response.choices[0].message.content == "gemini-standin: hello from the test"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0

    (entry,) = gemini.logged()
    assert entry["method"] == "POST"
    assert entry["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert entry["key_present"] is True
    assert "x-goog-api-key" in entry["header_names"]
    assert entry["body"]["contents"] == [
        {"role": "user", "parts": [{"text": "hello from the test"}]}
    ]
    assert GEMINI_KEY not in json.dumps(gemini.requests)


def test_gemini_streaming_text(gemini):
    text, calls, finish, pieces = streamed(gemini_call(gemini, stream=True))
    assert text == "gemini-standin: hello from the test"
    assert pieces >= 2 and calls == [] and finish == "stop"
    (entry,) = gemini.logged()
    assert entry["path"] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"


def test_gemini_tool_call(gemini):
    response = gemini_call(gemini, tools=[WEATHER_TOOL])
    message = response.choices[0].message
    assert response.choices[0].finish_reason == "tool_calls"
    (call,) = message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    (declaration,) = gemini.logged()[0]["body"]["tools"][0]["function_declarations"]
    assert declaration["name"] == "get_weather"


def test_gemini_streaming_tool_call_configured(gemini):
    gemini.set_mode(tool_call={"name": "lookup", "args": {"q": "nova"}})
    lookup = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    _, calls, finish, _ = streamed(gemini_call(gemini, tools=[WEATHER_TOOL, lookup], stream=True))
    assert calls == [{"name": "lookup", "args": {"q": "nova"}}]
    assert finish == "tool_calls"


def test_gemini_answers_text_after_a_tool_result(gemini):
    messages = [
        *user("weather?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    response = gemini_call(gemini, messages=messages, tools=[WEATHER_TOOL])
    assert response.choices[0].message.content == "gemini-standin: received function result"
    assert not response.choices[0].message.tool_calls


def test_gemini_wrong_key_is_an_authentication_error(gemini):
    with pytest.raises(litellm.AuthenticationError) as err:
        gemini_call(gemini, api_key="AIzaSyWRONGKEY")
    assert "API key not valid" in str(err.value)
    assert gemini.logged()[0]["key_present"] is True


def test_gemini_api_base_needs_the_version(gemini):
    with pytest.raises(litellm.NotFoundError):
        gemini_call(gemini, api_base=gemini.root)
    assert gemini.logged()[0]["path"] == "/models/gemini-2.5-flash:generateContent"


def test_gemini_down_is_googles_503(gemini):
    """LiteLLM maps Google's "The model is overloaded." 503 to InternalServerError."""
    gemini.down = True
    with pytest.raises(litellm.InternalServerError) as err:
        gemini_call(gemini)
    assert "UNAVAILABLE" in str(err.value)


def test_gemini_stream_fails_before_first_token(gemini):
    """The sync Gemini stream opens on first iteration; its 503 surfaces there as
    MidStreamFallbackError (a ServiceUnavailableError) flagged as before the first chunk."""
    gemini.fail_before_first_token = True
    response = gemini_call(gemini, stream=True)
    with pytest.raises(litellm.exceptions.MidStreamFallbackError) as err:
        list(response)
    assert err.value.is_pre_first_chunk is True and err.value.generated_content == ""
    assert "UNAVAILABLE" in str(err.value)
    assert gemini_call(gemini).choices[0].message.content  # non-streaming still answers


def test_gemini_async_stream_fails_before_first_token(gemini):
    gemini.fail_before_first_token = True

    async def run() -> None:
        response = await litellm.acompletion(
            model=MODEL, api_base=gemini.base, api_key=GEMINI_KEY, messages=user("hi"), stream=True
        )
        async for _ in response:
            pass

    with pytest.raises(litellm.exceptions.MidStreamFallbackError) as err:
        asyncio.run(run())
    assert err.value.is_pre_first_chunk is True


def test_gemini_dropped_connection_is_a_connection_error(gemini):
    gemini.drop = True
    with pytest.raises(litellm.APIConnectionError):
        gemini_call(gemini)


def test_gemini_delay_hits_the_timeout(gemini):
    gemini.delay_s = 2.0
    with pytest.raises(litellm.Timeout):
        gemini_call(gemini, timeout=0.5)


def test_gemini_async_streaming_tool_call(gemini):
    """``acompletion`` is what the proxy calls."""

    async def run() -> list[Any]:
        response = await litellm.acompletion(
            model=MODEL,
            api_base=gemini.base,
            api_key=GEMINI_KEY,
            messages=user("weather?"),
            tools=[WEATHER_TOOL],
            stream=True,
            timeout=15,
        )
        return [chunk async for chunk in response]

    built = litellm.stream_chunk_builder(asyncio.run(run()))
    (call,) = built.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    assert built.choices[0].finish_reason == "tool_calls"


# --- OpenAI-compatible (llama-server) -------------------------------------------------------------


def openai_call(backend, **kwargs: Any) -> Any:
    params: dict[str, Any] = {
        "model": "openai/standin-model",
        "api_base": backend.base,
        "api_key": "none",
        "messages": user("hello backend"),
        "timeout": 15,
        "num_retries": 0,
    }
    return litellm.completion(**{**params, **kwargs})


def test_openai_backend_text(openai_backend):
    response = openai_call(openai_backend)
    assert response.choices[0].message.content == "openai-standin: hello backend"
    (entry,) = openai_backend.logged()
    assert entry["path"] == "/v1/chat/completions" and entry["key_present"] is True
    text, _, finish, pieces = streamed(openai_call(openai_backend, stream=True))
    assert text == "openai-standin: hello backend" and finish == "stop" and pieces >= 2


def test_openai_backend_tool_call(openai_backend):
    response = openai_call(openai_backend, tools=[WEATHER_TOOL])
    assert response.choices[0].finish_reason == "tool_calls"
    (call,) = response.choices[0].message.tool_calls
    assert call.id == "call_1" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS


def test_openai_backend_streaming_tool_call(openai_backend):
    openai_backend.set_mode(tool_call={"name": "get_weather", "args": {"location": "Oslo"}})
    _, calls, finish, _ = streamed(openai_call(openai_backend, tools=[WEATHER_TOOL], stream=True))
    assert calls == [{"name": "get_weather", "args": {"location": "Oslo"}}]
    assert finish == "tool_calls"


def test_openai_backend_async_streaming_tool_call(openai_backend):
    async def run() -> list[Any]:
        response = await litellm.acompletion(
            model="openai/standin-model",
            api_base=openai_backend.base,
            api_key="none",
            messages=user("weather?"),
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
            timeout=15,
        )
        return [chunk async for chunk in response]

    built = litellm.stream_chunk_builder(asyncio.run(run()))
    (call,) = built.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    assert built.usage.total_tokens > 0


def test_openai_backend_down(openai_backend):
    openai_backend.down = True
    with pytest.raises(litellm.ServiceUnavailableError):
        openai_call(openai_backend)
