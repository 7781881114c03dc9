"""The llama backend with a real (tiny) GGUF model: wire shape, determinism, stop, limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from deltastream.server._errors import APIError
from deltastream.server.backends.llama import LlamaBackend, ModelNotFound, Overloaded, find_model

from ._sse import Event, chat_body, parse_sse

pytest.importorskip("llama_cpp")

PROMPT = "Write a story about a robot."


@pytest.fixture(scope="module")
def backend() -> LlamaBackend:
    try:
        loaded = LlamaBackend()
    except ModelNotFound as exc:
        pytest.skip(str(exc))
    loaded.load()
    return loaded


def body(**extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"max_tokens": 16, "seed": 1, "temperature": 0, "stream": True}
    return chat_body(PROMPT, **{**settings, **extra})


async def collect(events: AsyncIterator[bytes]) -> list[Event]:
    return parse_sse(b"".join([event async for event in events]))


def text_of(events: list[Event]) -> str:
    chunks = [e.json() for e in events if e.data != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


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
    with pytest.raises(ModelNotFound, match="not found"):
        find_model(str(tmp_path / "missing.gguf"))


async def test_stream_is_openai_shaped(backend: LlamaBackend) -> None:
    events = await collect(backend.stream_chat(body(stream_options={"include_usage": True})))
    assert events[-1].data == "[DONE]"
    assert all(e.event is None for e in events)
    chunks = [e.json() for e in events[:-1]]
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1
    assert ids.pop().startswith("chatcmpl-")
    for chunk in chunks:
        assert list(chunk) == [
            "id",
            "object",
            "created",
            "model",
            "system_fingerprint",
            "choices",
            *(["usage"] if not chunk["choices"] else []),
        ]
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "gpt-4"
    *choice_chunks, usage_chunk = chunks
    for chunk in choice_chunks:
        (choice,) = chunk["choices"]
        assert list(choice) == ["index", "delta", "logprobs", "finish_reason"]
        assert choice["index"] == 0
        assert choice["logprobs"] is None
    assert choice_chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    finish = choice_chunks[-1]["choices"][0]
    assert finish["delta"] == {}
    assert finish["finish_reason"] in ("length", "stop")
    assert all(c["choices"][0]["finish_reason"] is None for c in choice_chunks[:-1])
    content = [c for c in choice_chunks if c["choices"][0]["delta"].get("content")]
    assert text_of(events).strip()
    usage = usage_chunk["usage"]
    assert usage_chunk["choices"] == []
    assert usage["completion_tokens"] == len(content) <= 16
    assert usage["prompt_tokens"] > 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert finish["finish_reason"] == "length" or len(content) < 16


async def test_seed_and_zero_temperature_repeat(backend: LlamaBackend) -> None:
    first = text_of(await collect(backend.stream_chat(body())))
    second = text_of(await collect(backend.stream_chat(body())))
    assert first == second
    completion = await backend.complete_chat(body(stream=False))
    assert completion["object"] == "chat.completion"
    choice = completion["choices"][0]  # type: ignore[index]
    assert choice["message"]["content"] == first
    assert choice["finish_reason"] in ("length", "stop")
    assert completion["usage"]["completion_tokens"] <= 16  # type: ignore[index]


async def test_stop_is_honoured(backend: LlamaBackend) -> None:
    full = text_of(await collect(backend.stream_chat(body())))
    word = full.split()[2]
    events = await collect(backend.stream_chat(body(stop=[word])))
    assert text_of(events) == full[: full.index(word)]
    assert events[-2].json()["choices"][0]["finish_reason"] == "stop"


async def test_closing_the_stream_stops_the_worker(backend: LlamaBackend) -> None:
    events = backend.stream_chat(body(max_tokens=1500))
    seen = [await anext(events) for _ in range(3)]
    assert b'"content"' in seen[-1]
    assert backend.busy == 1
    await events.aclose()
    # One more token at most, then the worker exits (1500 tokens would take many seconds).
    assert await wait_idle(backend) < 2.0


async def test_overloaded_when_queue_is_full(backend: LlamaBackend) -> None:
    limited = LlamaBackend(backend.model_path, max_concurrent=1, queue_limit=0)
    running = limited.stream_chat(body(max_tokens=1500))
    await anext(running)
    with pytest.raises(Overloaded, match="busy"):
        await anext(limited.stream_chat(body()))
    with pytest.raises(Overloaded):
        await limited.start_stream(body())
    with pytest.raises(Overloaded):
        await limited.complete_chat(body())
    await running.aclose()
    await wait_idle(limited)
    events = await collect(await limited.start_stream(body(max_tokens=4)))
    assert events[-1].data == "[DONE]"


@pytest.mark.parametrize(
    "extra",
    [
        {"temperature": 3},
        {"temperature": "hot"},
        {"top_p": 1.5},
        {"stop": [1]},
        {"stop": ["a"] * 5},
    ],
)
async def test_bad_sampling_parameters_are_400(
    backend: LlamaBackend, extra: dict[str, Any]
) -> None:
    with pytest.raises(APIError) as caught:
        await backend.complete_chat(body(**extra))
    assert caught.value.status == 400
    assert caught.value.param == next(iter(extra))
    assert backend.busy == 0
