"""The llama backend with the shipped small GGUF model, over a real socket: the wire
shape, determinism, stop, tool calls, JSON output, log-probabilities, n, limits.

Generations are kept to a few tokens: on a shared 2-core machine one token takes
20-30 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from deltastream.server._pieces import Arguments, Call, Finish, Piece
from deltastream.server._validate import validate_chat_request
from deltastream.server.backends.llama import LlamaBackend, ModelNotFound, Overloaded, find_model

from ._sse import Event, chat_body, parse_sse
from ._validator import validate
from .test_chat import WEATHER_TOOL, weather_answered

pytest.importorskip("llama_cpp")

PROMPT = "Write a story about a robot."
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the current time in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def backend() -> LlamaBackend:
    try:
        loaded = LlamaBackend()
    except ModelNotFound as exc:
        pytest.skip(str(exc))
    loaded.load()
    return loaded


def body(prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"max_tokens": 12, "seed": 1, "temperature": 0}
    return chat_body(prompt, **{**settings, **extra})


def stream(http: httpx2.Client, url: str, request: dict[str, Any]) -> list[Event]:
    response = http.post(f"{url}/chat/completions", json={**request, "stream": True})
    assert response.status_code == 200, response.text
    return parse_sse(response.content)


def complete(http: httpx2.Client, url: str, request: dict[str, Any]) -> dict[str, Any]:
    response = http.post(f"{url}/chat/completions", json=request)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def chunks_of(events: list[Event]) -> list[dict[str, Any]]:
    assert events[-1].data == "[DONE]"
    return [e.json() for e in events[:-1]]


def text_of(events: list[Event], index: int = 0) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in chunks_of(events)
        if c["choices"] and c["choices"][0]["index"] == index
    )


async def wait_idle(backend: LlamaBackend, limit: float = 5.0) -> float:
    started = time.perf_counter()
    while backend.busy:
        assert time.perf_counter() - started < limit, "the worker did not stop"
        await asyncio.sleep(0.01)
    return time.perf_counter() - started


def test_find_model_explicit_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    assert find_model(str(model)) == model
    monkeypatch.setenv("DELTASTREAM_GGUF", str(model))
    assert find_model() == model
    with pytest.raises(ModelNotFound, match=r"not found: .*missing\.gguf"):
        find_model(str(tmp_path / "missing.gguf"))


def test_stream_is_openai_shaped(http: httpx2.Client, llama_url: str) -> None:
    events = stream(http, llama_url, body(stream_options={"include_usage": True}))
    assert all(e.event is None for e in events)
    chunks = chunks_of(events)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-")
    for chunk in chunks:
        assert list(chunk)[:6] == [
            "id",
            "object",
            "created",
            "model",
            "system_fingerprint",
            "choices",
        ]
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "gpt-4"
    *choice_chunks, usage_chunk = chunks
    for chunk in choice_chunks:
        (choice,) = chunk["choices"]
        assert list(choice) == ["index", "delta", "logprobs", "finish_reason"]
        assert choice["logprobs"] is None
    assert choice_chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    finish = choice_chunks[-1]["choices"][0]
    assert finish["delta"] == {}
    assert finish["finish_reason"] == "length"
    assert text_of(events).strip()
    usage = usage_chunk["usage"]
    assert usage_chunk["choices"] == []
    assert usage["completion_tokens"] == 12
    assert usage["prompt_tokens"] > 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_seed_and_zero_temperature_repeat(http: httpx2.Client, llama_url: str) -> None:
    first = text_of(stream(http, llama_url, body()))
    assert text_of(stream(http, llama_url, body())) == first
    completion = complete(http, llama_url, body())
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == first
    assert completion["usage"]["completion_tokens"] == 12


def test_stop_is_honoured(http: httpx2.Client, llama_url: str) -> None:
    full = text_of(stream(http, llama_url, body()))
    word = full.split()[2]
    events = stream(http, llama_url, body(stop=[word, "zzz-never"]))
    assert text_of(events) == full[: full.index(word)]
    assert chunks_of(events)[-1]["choices"][0]["finish_reason"] == "stop"


def test_n_choices_differ_by_seed(http: httpx2.Client, llama_url: str) -> None:
    request = body("Hello!", n=2, max_tokens=6, temperature=1.0, seed=7)
    events = stream(http, llama_url, {**request, "stream_options": {"include_usage": True}})
    first, second = text_of(events, 0), text_of(events, 1)
    assert first
    assert second
    assert chunks_of(events)[-1]["usage"]["completion_tokens"] == 12
    completion = complete(http, llama_url, request)
    assert [c["message"]["content"] for c in completion["choices"]] == [first, second]


def test_logprobs(http: httpx2.Client, llama_url: str) -> None:
    completion = complete(http, llama_url, body(max_tokens=4, logprobs=True, top_logprobs=3))
    choice = completion["choices"][0]
    entries = choice["logprobs"]["content"]
    assert "".join(entry["token"] for entry in entries) == choice["message"]["content"]
    for entry in entries:
        assert bytes(entry["bytes"]) == entry["token"].encode()
        assert entry["logprob"] <= 0
        top = entry["top_logprobs"]
        assert len(top) == 3
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        # Greedy sampling: the token taken is the most likely one.
        assert top[0]["token"] == entry["token"]
    events = stream(http, llama_url, body(max_tokens=4, logprobs=True))
    content = [c for c in chunks_of(events) if c["choices"][0]["delta"].get("content")]
    assert all(len(c["choices"][0]["logprobs"]["content"]) >= 1 for c in content)


@pytest.mark.parametrize(
    ("tool_choice", "prompt", "name"),
    [
        ("auto", "What's the weather in Tokyo?", "get_weather"),
        ("required", "What time is it in Paris?", "get_time"),
        ({"type": "function", "function": {"name": "get_time"}}, "Hello!", "get_time"),
    ],
)
def test_tool_calls_follow_the_schema(
    http: httpx2.Client, llama_url: str, tool_choice: Any, prompt: str, name: str
) -> None:
    request = body(prompt, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=tool_choice)
    request["max_tokens"] = 40
    chunks = chunks_of(stream(http, llama_url, request))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None}
    call = deltas[1]["tool_calls"][0]
    assert call["function"] == {"name": name, "arguments": ""}
    assert "function_call" not in deltas[1]  # two tools offered: no legacy mirror
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:-1])
    schema = (TIME_TOOL if name == "get_time" else WEATHER_TOOL)["function"]["parameters"]
    assert validate(json.loads(arguments), schema) == []
    assert arguments == arguments.strip()
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_auto_answers_in_text_after_the_tool_result(http: httpx2.Client, llama_url: str) -> None:
    request = body("What's the weather in Tokyo?", tools=[WEATHER_TOOL])
    request["messages"] += weather_answered('{"location":"Tokyo"}', "22 C and sunny")
    message = complete(http, llama_url, request)["choices"][0]["message"]
    assert message["content"]
    assert "tool_calls" not in message


def test_one_tool_is_mirrored_in_function_call_for_the_official_client(llama_url: str) -> None:
    client = openai.OpenAI(base_url=llama_url, api_key="x", max_retries=0)
    messages: Any = [{"role": "user", "content": "What's the weather in Tokyo?"}]
    tools: Any = [WEATHER_TOOL]
    with client.chat.completions.create(
        model="smollm2",
        messages=messages,
        tools=tools,
        tool_choice="required",
        max_tokens=40,
        seed=1,
        stream=True,
    ) as chunks:
        name = arguments = legacy = ""
        for chunk in chunks:
            delta = chunk.choices[0].delta
            for call in delta.tool_calls or []:
                name += call.function.name or "" if call.function else ""
                arguments += call.function.arguments or "" if call.function else ""
            if delta.function_call:
                legacy += delta.function_call.arguments or ""
    with client.chat.completions.stream(
        model="smollm2",
        messages=messages,
        tools=tools,
        tool_choice="required",
        max_tokens=40,
        seed=1,
    ) as helper:
        final = helper.get_final_completion()
    client.close()
    assert name == "get_weather"
    assert legacy == arguments
    assert "location" in json.loads(arguments)
    (final_call,) = final.choices[0].message.tool_calls or []
    assert final_call.function.arguments == arguments


def test_legacy_functions_are_answered_with_function_call(
    http: httpx2.Client, llama_url: str
) -> None:
    request = body(
        "Weather in Oslo?",
        functions=[WEATHER_TOOL["function"]],
        function_call={"name": "get_weather"},
        max_tokens=40,
    )
    chunks = chunks_of(stream(http, llama_url, request))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": ""},
    }
    arguments = "".join(d["function_call"]["arguments"] for d in deltas[1:-1])
    assert "location" in json.loads(arguments)
    assert chunks[-1]["choices"][0]["finish_reason"] == "function_call"


CAT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12}, "indoor": {"type": "boolean"}},
    "required": ["name", "indoor"],
    "additionalProperties": False,
}


def test_response_format_json_schema_and_object(http: httpx2.Client, llama_url: str) -> None:
    form = {"type": "json_schema", "json_schema": {"name": "cat", "schema": CAT_SCHEMA}}
    message = complete(
        http, llama_url, body("Describe a cat.", response_format=form, max_tokens=40)
    )
    assert validate(json.loads(message["choices"][0]["message"]["content"]), CAT_SCHEMA) == []
    json_request = body("A cat, as JSON.", response_format={"type": "json_object"}, max_tokens=40)
    text = text_of(stream(http, llama_url, json_request))
    assert text.startswith("{")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"stop": [1]}, "stop"),
        ({"stop": ["a"] * 5}, "stop"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"max_tokens": 5000}, "messages"),
        ({"response_format": {"type": "json_object"}}, "messages"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 1}}}]},
            "tools",
        ),
    ],
)
def test_what_the_model_cannot_do_is_a_400(
    http: httpx2.Client, llama_url: str, extra: dict[str, Any], param: str
) -> None:
    response = http.post(f"{llama_url}/chat/completions", json=body("Hi", **extra))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert error["message"]


def request_of(**extra: Any) -> Any:
    return validate_chat_request(body(**extra))


async def collect(pieces: AsyncIterator[Piece]) -> list[Piece]:
    return [piece async for piece in pieces]


@pytest.mark.slow  # 100 short generations: 15-40 s on a shared 2-core machine
async def test_grammar_arguments_match_the_schema_in_100_seeded_runs(
    backend: LlamaBackend,
) -> None:
    """100 choices at temperature 1 (seeds 0-99), one request: every argument string
    parses and matches the schema (a bounded string, an enum, a boolean, an array of
    bounded length: what the grammar enforces)."""
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "minLength": 1, "maxLength": 12},
            "unit": {"enum": ["c", "f"]},
            "alerts": {"type": "boolean"},
            "days": {
                "type": "array",
                "items": {"enum": ["mon", "tue", "wed"]},
                "minItems": 1,
                "maxItems": 2,
            },
        },
        "required": ["city", "unit", "alerts", "days"],
        "additionalProperties": False,
    }
    tool = {"type": "function", "function": {"name": "pick", "parameters": schema}}
    request = request_of(
        tools=[tool], tool_choice="required", n=100, temperature=1.0, seed=0, max_tokens=80
    )
    pieces = await collect(await backend.start(request))
    arguments: dict[int, str] = {}
    for piece in pieces:
        if isinstance(piece, Call):
            arguments[piece.choice] = ""
        elif isinstance(piece, Arguments):
            arguments[piece.choice] += piece.text
    finishes = [p.reason for p in pieces if isinstance(p, Finish)]
    assert finishes == ["tool_calls"] * 100
    failures = {i: a for i, a in arguments.items() if validate(json.loads(a), schema)}
    assert len(arguments) == 100
    assert failures == {}
    assert len(set(arguments.values())) > 1  # sampled, not all alike


async def test_closing_the_stream_stops_the_worker(backend: LlamaBackend) -> None:
    pieces = await backend.start(request_of(max_tokens=1500))
    seen = [await anext(pieces) for _ in range(3)]
    assert len(seen) == 3
    assert backend.busy == 1
    await pieces.aclose()  # type: ignore[attr-defined]
    # One more token at most, then the worker exits (1500 tokens would take many seconds).
    assert await wait_idle(backend) < 2.0


async def test_overloaded_when_queue_is_full(backend: LlamaBackend) -> None:
    limited = LlamaBackend(backend.model_path, max_concurrent=1, queue_limit=0)
    running = await limited.start(request_of(max_tokens=1500))
    with pytest.raises(Overloaded, match="busy"):
        await limited.start(request_of())
    await running.aclose()  # type: ignore[attr-defined]
    await wait_idle(limited)
    pieces = await collect(await limited.start(request_of(max_tokens=2)))
    assert isinstance(pieces[-2], Finish)
