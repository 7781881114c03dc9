"""The 63 recorded streams of ../shared/wire through the drop-in: openai's types out,
the same results the MANIFEST expects, and openai's errors (with ``.partial`` in
openai's types) where a stream reports one."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

import deltastream
from tests._wire import manifest

MANIFEST = manifest()
CHAT = [c for c in MANIFEST["captures"] if c["api"] == "chat.completions"]
RESPONSES = [c for c in MANIFEST["captures"] if c["api"] == "responses"]
_RESPONSE_EVENT_TYPES = tuple(type_ for type_ in ResponseStreamEvent.__args__[0].__args__)  # type: ignore[attr-defined]


def _ids(captures: list[dict[str, Any]]) -> list[str]:
    return [c["file"] for c in captures]


def _raised(capture: dict[str, Any], error: BaseException | None) -> Any:
    """Check the error a stream must raise; return its partial result."""
    want = capture["expected"]["raise"]
    assert isinstance(error, deltastream.APIStreamError), error
    assert isinstance(error, openai.APIError)
    assert error.message == want["message"]
    # as openai itself reads the code (a string since openai 3.x's later releases)
    assert error.code == openai.APIError("", error.request, body={"code": want["code"]}).code
    assert error.type == want["type"]
    return error.partial


def check_chat(capture: dict[str, Any], chunks: list[Any], final: Any, error: Any) -> None:
    expected = capture["expected"]
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    if expected["raise"] is not None:
        final = _raised(capture, error)
    else:
        assert error is None, error
    assert isinstance(final, ChatCompletion)
    choices = {str(c.index): c for c in final.choices}
    assert set(choices) == set(expected["choices"])
    for index, want in expected["choices"].items():
        choice = choices[index]
        message = choice.message
        assert message.role == (want["role"] or "assistant")
        assert message.content == want["content"]
        assert choice.finish_reason == want["finish_reason"]
        for field in ("refusal", "reasoning_content", "reasoning", "thinking"):
            if field in want:
                assert getattr(message, field, None) == want[field], field
        tool_calls: list[Any] = message.tool_calls or []
        calls = [
            {"id": c.id, "type": c.type, "name": c.function.name, "arguments": c.function.arguments}
            for c in tool_calls
        ]
        assert calls == [
            {
                "id": w["id"],
                "type": w["type"] or "function",
                "name": w["name"],
                "arguments": w["arguments"],
            }
            for w in want["tool_calls"]
        ]
        if "logprobs" in want:
            assert choice.logprobs is not None
            assert len(choice.logprobs.content or []) == want["logprobs"]["content_tokens"]
            assert len(choice.logprobs.refusal or []) == want["logprobs"]["refusal_tokens"]
    if expected["raise"] is None:
        sent = [c.usage.model_dump(exclude_unset=True) for c in chunks if c.usage is not None]
        assert (sent[-1] if sent else None) == expected["usage"]
        if expected["usage"] is not None:
            assert final.usage is not None
            assert final.usage.total_tokens == expected["usage"]["total_tokens"]


def check_responses(capture: dict[str, Any], events: list[Any], final: Any, error: Any) -> None:
    expected = capture["expected"]
    assert all(isinstance(e, _RESPONSE_EVENT_TYPES) for e in events), [type(e) for e in events]
    if expected["raise"] is not None:
        final = _raised(capture, error)
    else:
        assert error is None, error
    assert isinstance(final, Response)
    assert final.output_text == expected["output_text"]
    calls = [
        {"item_id": i.id, "call_id": i.call_id, "name": i.name, "arguments": i.arguments}
        for i in final.output
        if i.type == "function_call"
    ]
    assert calls == [
        {k: w[k] for k in ("item_id", "call_id", "name", "arguments")}
        for w in expected["function_calls"]
    ]
    reasoning = [i for i in final.output if i.type == "reasoning"]
    if "reasoning_text" in expected:
        text = "".join(p.text or "" for i in reasoning for p in i.content or ())
        assert text == expected["reasoning_text"]
    if "reasoning_summary" in expected:
        assert [p.text for i in reasoning for p in i.summary or ()] == expected["reasoning_summary"]
    if expected["raise"] is not None:
        return
    assert [i.type for i in final.output] == expected["output_item_types"]
    assert final.status == expected["status"]
    assert final.usage is not None
    usage = expected["usage"]
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
        usage["total_tokens"],
    )
    assert events[-1].type == expected["terminal_event"]


@pytest.mark.parametrize("capture", CHAT, ids=_ids(CHAT))
def test_recorded_chat_stream(replay_url: str, capture: dict[str, Any]) -> None:
    chunks: list[Any] = []
    final = error = None
    client = deltastream.OpenAI(base_url=replay_url, max_retries=0)
    try:
        with (
            client,
            client.chat.completions.create(
                model=capture["file"],
                messages=[],
                stream=True,
                extra_headers={"X-Deltastream-Chunk-Size": "7"},
            ) as stream,
        ):
            chunks.extend(stream)
            final = stream.get_final_completion()  # type: ignore[attr-defined]
    except openai.APIError as exc:
        error = exc
    check_chat(capture, chunks, final, error)


@pytest.mark.parametrize("capture", CHAT, ids=_ids(CHAT))
async def test_recorded_chat_stream_async(replay_url: str, capture: dict[str, Any]) -> None:
    chunks: list[Any] = []
    final = error = None
    async with deltastream.AsyncOpenAI(base_url=replay_url, max_retries=0) as client:
        try:
            stream = await client.chat.completions.create(
                model=capture["file"], messages=[], stream=True
            )
            async with stream:
                chunks.extend([chunk async for chunk in stream])
                final = await stream.get_final_completion()  # type: ignore[attr-defined]
        except openai.APIError as exc:
            error = exc
    check_chat(capture, chunks, final, error)


@pytest.mark.parametrize("capture", RESPONSES, ids=_ids(RESPONSES))
def test_recorded_responses_stream(replay_url: str, capture: dict[str, Any]) -> None:
    events: list[Any] = []
    final = error = None
    client = deltastream.OpenAI(base_url=replay_url, max_retries=0)
    try:
        with (
            client,
            client.responses.create(
                model=capture["file"],
                input="hi",
                stream=True,
                extra_headers={"X-Deltastream-Chunk-Size": "7"},
            ) as stream,
        ):
            events.extend(stream)
            final = stream.get_final_response()  # type: ignore[attr-defined]
    except openai.APIError as exc:
        error = exc
    check_responses(capture, events, final, error)


@pytest.mark.parametrize("capture", RESPONSES, ids=_ids(RESPONSES))
async def test_recorded_responses_stream_async(replay_url: str, capture: dict[str, Any]) -> None:
    events: list[Any] = []
    final = error = None
    async with deltastream.AsyncOpenAI(base_url=replay_url, max_retries=0) as client:
        try:
            stream = await client.responses.create(model=capture["file"], input="hi", stream=True)
            async with stream:
                events.extend([event async for event in stream])
                final = await stream.get_final_response()  # type: ignore[attr-defined]
        except openai.APIError as exc:
            error = exc
    check_responses(capture, events, final, error)
