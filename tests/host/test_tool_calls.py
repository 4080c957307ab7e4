"""Tool calls pass through the real gateway unchanged, in both directions, streamed and not.

Small real models (the embedded SmolLM2-135M) do not reliably emit tool calls, so the backends
that answer here are stand-ins that always do: the Gemini stand-in (a fixed ``functionCall``)
and, for the local direction, ``tests/standins/openai_backend.py`` run on this machine on the
llama-server port while nova-llama-server is stopped (the host shares our network namespace,
so the gateway's unchanged route to the local model reaches it).
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.standins.openai_backend import OpenAIBackendStandin

from .hostlib import Host, chat

pytestmark = pytest.mark.host

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]


def _check_call(answer, args: dict) -> None:
    assert answer.ok, answer
    assert answer.fallbacks == 0, answer
    assert len(answer.tool_calls) == 1, answer
    call = answer.tool_calls[0]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == args


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_gemini_tool_call(with_key: Host, stream: bool) -> None:
    host = with_key
    host.gemini.set_mode(tool_call={"name": "get_weather", "args": {"city": "Paris"}})
    with host.gateway() as client:
        answer = chat(
            client,
            host.gemini_model,
            "Weather in Paris?",
            max_tokens=64,
            stream=stream,
            tools=TOOLS,
        )
    print(f"\n[tools/gemini stream={stream}] {answer.tool_calls}", flush=True)
    _check_call(answer, {"city": "Paris"})
    sent = host.gemini.logged("POST", "enerateContent")[-1]["body"]
    declarations = [
        d
        for tool in sent["tools"]
        for d in tool.get("functionDeclarations") or tool.get("function_declarations") or []
    ]
    assert [d["name"] for d in declarations] == ["get_weather"]
    params = declarations[0].get("parameters") or declarations[0].get("parametersJsonSchema")
    assert params["required"] == ["city"]
    assert set(params["properties"]) == {"city", "unit"}


def test_local_tool_call_through_gateway(with_key: Host) -> None:
    host = with_key
    host.ssh("systemctl stop nova-llama-server")
    try:
        standin = OpenAIBackendStandin(
            port=host.llama_port,
            model=host.local_model,
            tool_call={"name": "get_weather", "args": {"city": "Lisbon", "unit": "celsius"}},
        ).start()
    except OSError:
        host.ensure_llama_running()
        raise
    try:
        deadline = time.monotonic() + 10
        while httpx.get(f"{host.llama_url}/health", timeout=3).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with host.gateway() as client:
            for stream in (False, True):
                answer = chat(
                    client,
                    host.local_model,
                    "Weather in Lisbon?",
                    max_tokens=64,
                    stream=stream,
                    tools=TOOLS,
                )
                print(f"\n[tools/local stream={stream}] {answer.tool_calls}", flush=True)
                _check_call(answer, {"city": "Lisbon", "unit": "celsius"})
        sent = standin.logged("POST", "/chat/completions")
        assert len(sent) == 2
        for entry in sent:
            assert entry["body"]["tools"] == TOOLS
        assert not host.gemini.logged("POST", "enerateContent")  # no fallback happened
    finally:
        standin.stop()
        host.ensure_llama_running()
