"""The scripted backend over a real socket: OpenAI's chat wire format, byte for byte."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2
import pytest

from ._sse import Event, chat_body, parse_sse

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}


def weather_answered(arguments: str, result: str) -> list[dict[str, Any]]:
    """A turn of a conversation: the assistant calls get_weather, the tool answers."""
    function = {"name": "get_weather", "arguments": arguments}
    call = {"id": "call_1", "type": "function", "function": function}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


def _stream(
    http: httpx2.Client, server_url: str, body: dict[str, Any]
) -> tuple[httpx2.Response, list[Event]]:
    response = http.post(f"{server_url}/chat/completions", json={**body, "stream": True})
    assert response.status_code == 200, response.text
    return response, parse_sse(response.content)


def _chunks(events: list[Event]) -> list[dict[str, Any]]:
    assert events[-1].data == "[DONE]"
    return [event.json() for event in events[:-1]]


def _deltas(chunks: list[dict[str, Any]], index: int = 0) -> list[dict[str, Any]]:
    return [
        c["choices"][0]["delta"]
        for c in chunks
        if c["choices"] and c["choices"][0]["index"] == index
    ]


def test_text_stream_wire_format(http: httpx2.Client, server_url: str) -> None:
    response, events = _stream(http, server_url, chat_body("Write a story about a robot."))
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-request-id"].startswith("req_")
    for line in response.content.split(b"\n\n")[:-2]:
        payload = json.loads(line.removeprefix(b"data: "))
        compact = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        assert line == b"data: " + compact.encode()
    chunks = _chunks(events)
    assert all(event.event is None for event in events)
    for chunk in chunks:
        assert list(chunk) == ["id", "object", "created", "model", "system_fingerprint", "choices"]
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"] == chunks[0]["id"]
        assert chunk["id"].startswith("chatcmpl-")
        assert chunk["model"] == "gpt-4"
        assert chunk["system_fingerprint"].startswith("fp_")
        assert isinstance(chunk["created"], int)
        assert list(chunk["choices"][0]) == ["index", "delta", "logprobs", "finish_reason"]
        assert chunk["choices"][0]["logprobs"] is None
    deltas = _deltas(chunks)
    assert deltas[0] == {"role": "assistant", "content": "", "refusal": None}
    assert deltas[-1] == {}
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    pieces = [delta["content"] for delta in deltas[1:-1]]
    assert all(list(delta) == ["content"] for delta in deltas[1:-1])
    assert all(0 < len(piece) <= 16 for piece in pieces)
    story = "".join(pieces)
    assert story.startswith("Once upon a time")
    assert "robot" in story
    assert len(story) > 300


def test_usage_chunk(http: httpx2.Client, server_url: str) -> None:
    body = chat_body("Count to 5", stream_options={"include_usage": True})
    _, events = _stream(http, server_url, body)
    chunks = _chunks(events)
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert list(usage_chunk)[-1] == "usage"
    usage = usage_chunk["usage"]
    content = [d["content"] for d in _deltas(chunks[:-1])[1:-1]]
    assert "".join(content) == "1, 2, 3, 4, 5."
    assert usage["completion_tokens"] == len(content)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0
    # As OpenAI sends them: "usage": null on every chunk before, no key without asking.
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    _, plain = _stream(http, server_url, chat_body("Count to 5"))
    assert all("usage" not in chunk for chunk in _chunks(plain))


def test_same_request_same_bytes(http: httpx2.Client, server_url: str) -> None:
    first, _ = _stream(http, server_url, chat_body("Explain Python"))
    second, _ = _stream(http, server_url, chat_body("Explain Python"))

    def without_created(body: bytes) -> bytes:
        return re.sub(rb'"created":\d+', b"", body)

    assert without_created(first.content) == without_created(second.content)
    other, _ = _stream(http, server_url, chat_body("Hello!", seed=1))
    again, _ = _stream(http, server_url, chat_body("Hello!", seed=2))
    assert without_created(other.content) != without_created(again.content)


def test_multibyte_characters_are_sent_as_utf8(http: httpx2.Client, server_url: str) -> None:
    response, events = _stream(http, server_url, chat_body("Hello! Ça va?"))
    assert "👋".encode() in response.content
    text = "".join(d.get("content") or "" for d in _deltas(_chunks(events)))
    assert "👋" in text


def test_stream_and_non_stream_agree(http: httpx2.Client, server_url: str) -> None:
    _, events = _stream(http, server_url, chat_body("Explain Python"))
    streamed = "".join(d.get("content") or "" for d in _deltas(_chunks(events)))
    response = http.post(f"{server_url}/chat/completions", json=chat_body("Explain Python"))
    completion = response.json()
    assert response.headers["content-type"] == "application/json"
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "gpt-4"
    choice = completion["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": streamed, "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert completion["usage"]["total_tokens"] > completion["usage"]["prompt_tokens"]


def test_tool_call_stream(http: httpx2.Client, server_url: str) -> None:
    body = chat_body("What's the weather in Tokyo?", tools=[WEATHER_TOOL])
    _, events = _stream(http, server_url, body)
    chunks = _chunks(events)
    deltas = _deltas(chunks)
    assert deltas[0] == {"role": "assistant", "content": None}
    first_call = deltas[1]["tool_calls"][0]
    assert first_call["index"] == 0
    assert first_call["type"] == "function"
    assert re.fullmatch(r"call_\w+", first_call["id"])
    assert first_call["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:-1]]
    assert all(
        d["tool_calls"][0] == {"index": 0, "function": {"arguments": f}}
        for d, f in zip(deltas[2:-1], fragments, strict=True)
    )
    assert all(0 < len(fragment) <= 8 for fragment in fragments)
    assert len(fragments) > 3
    assert json.loads("".join(fragments)) == {"location": "Tokyo", "unit": "celsius"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_legacy_function_call_stream(http: httpx2.Client, server_url: str) -> None:
    function = WEATHER_TOOL["function"]
    body = chat_body("What's the weather in Paris?", functions=[function])
    _, events = _stream(http, server_url, body)
    chunks = _chunks(events)
    deltas = _deltas(chunks)
    assert deltas[0] == {
        "role": "assistant",
        "content": None,
        "function_call": {"name": "get_weather", "arguments": ""},
    }
    arguments = "".join(d["function_call"]["arguments"] for d in deltas[1:-1])
    assert json.loads(arguments) == {"location": "Paris", "unit": "celsius"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "function_call"


@pytest.mark.parametrize(
    "extra",
    [
        {"tool_choice": "none"},
        {"messages_after": weather_answered("{}", "22 C")},
    ],
)
def test_text_instead_of_a_tool_call(
    http: httpx2.Client, server_url: str, extra: dict[str, Any]
) -> None:
    body = chat_body("What's the weather in Tokyo?", tools=[WEATHER_TOOL])
    body["messages"] += extra.pop("messages_after", [])
    body.update(extra)
    _, events = _stream(http, server_url, body)
    chunks = _chunks(events)
    assert all("tool_calls" not in d for d in _deltas(chunks))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_n_choices_are_interleaved(http: httpx2.Client, server_url: str) -> None:
    body = chat_body("Hello!", n=3, stream_options={"include_usage": True})
    _, events = _stream(http, server_url, body)
    chunks = _chunks(events)
    indexes = [c["choices"][0]["index"] for c in chunks if c["choices"]]
    assert sorted(set(indexes)) == [0, 1, 2]
    assert indexes != sorted(indexes)
    texts = []
    for index in range(3):
        deltas = _deltas(chunks, index)
        assert deltas[0]["role"] == "assistant"
        assert deltas[-1] == {}
        texts.append("".join(d.get("content") or "" for d in deltas))
    assert len(set(texts)) == 3
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes.count("stop") == 3
    assert chunks[-1]["usage"]["completion_tokens"] == len(indexes) - 6


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_gives_length(http: httpx2.Client, server_url: str, limit: str) -> None:
    _, events = _stream(http, server_url, chat_body("Write a story about a robot.", **{limit: 3}))
    chunks = _chunks(events)
    content = [d["content"] for d in _deltas(chunks)[1:-1]]
    assert content == ["Once", " upon", " a"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    response = http.post(
        f"{server_url}/chat/completions", json=chat_body("Count to 9", **{limit: 2})
    )
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == "1,"
    assert choice["finish_reason"] == "length"


def test_tool_call_cut_by_length(http: httpx2.Client, server_url: str) -> None:
    body = chat_body("Weather in Oslo?", tools=[WEATHER_TOOL], max_tokens=2)
    response = http.post(f"{server_url}/chat/completions", json=body)
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"location'


def test_stop_cuts_the_reply(http: httpx2.Client, server_url: str) -> None:
    _, events = _stream(http, server_url, chat_body("Count to 9", stop=[", 4", "never"]))
    chunks = _chunks(events)
    text = "".join(d.get("content") or "" for d in _deltas(chunks))
    assert text == "1, 2, 3"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_logprobs_are_stable_and_shaped_as_openais(http: httpx2.Client, server_url: str) -> None:
    request = chat_body("Count to 3", logprobs=True, top_logprobs=2)
    _, events = _stream(http, server_url, request)
    chunks = _chunks(events)
    assert chunks[0]["choices"][0]["logprobs"] == {"content": [], "refusal": None}
    content = [c for c in chunks if c["choices"][0]["delta"].get("content")]
    for chunk in content:
        (entry,) = chunk["choices"][0]["logprobs"]["content"]
        assert entry["token"] == chunk["choices"][0]["delta"]["content"]
        assert bytes(entry["bytes"]) == entry["token"].encode()
        assert entry["top_logprobs"][0]["token"] == entry["token"]
        assert len(entry["top_logprobs"]) == 2
    again = _chunks(_stream(http, server_url, request)[1])
    assert [c["choices"][0]["logprobs"] for c in again] == [
        c["choices"][0]["logprobs"] for c in chunks
    ]
    whole = http.post(f"{server_url}/chat/completions", json=request).json()
    assert len(whole["choices"][0]["logprobs"]["content"]) == len(content)


def test_response_format(http: httpx2.Client, server_url: str) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 5}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    }
    form = {"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}}
    request = chat_body("A trip to Lisbon, as JSON", response_format=form)
    message = http.post(f"{server_url}/chat/completions", json=request).json()
    assert json.loads(message["choices"][0]["message"]["content"]) == {"city": "Lisbo", "days": 1}
    request = chat_body("Hello, in JSON", response_format={"type": "json_object"})
    message = http.post(f"{server_url}/chat/completions", json=request).json()
    assert json.loads(message["choices"][0]["message"]["content"])["reply"].startswith("Hello")


def test_one_tool_is_mirrored_in_function_call(http: httpx2.Client, server_url: str) -> None:
    body = chat_body("What's the weather in Tokyo?", tools=[WEATHER_TOOL])
    deltas = _deltas(_chunks(_stream(http, server_url, body)[1]))
    assert deltas[1]["function_call"] == {"name": "get_weather", "arguments": ""}
    legacy = "".join(d["function_call"]["arguments"] for d in deltas[2:-1])
    calls = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:-1])
    assert legacy == calls
    message = http.post(f"{server_url}/chat/completions", json=body).json()["choices"][0]
    assert message["message"]["function_call"]["arguments"] == calls
    other = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    two = chat_body("What's the weather in Tokyo?", tools=[WEATHER_TOOL, other])
    assert all(
        "function_call" not in d for d in _deltas(_chunks(_stream(http, server_url, two)[1]))
    )
