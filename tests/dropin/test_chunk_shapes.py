"""Chunks whose shape openai's schema does not describe: a ``"delta": null`` and content
sent as a list of typed parts (Mistral's magistral). The same bytes go to openai's client
and to the drop-in (httpx2's MockTransport, sync and async): every chunk's
``model_dump()`` must agree, and so must the events of the ``.stream()`` helper where
openai's works. The engine's own results (snapshots, ``text_deltas()``) read both
shapes, also where openai's helper drops text or fails: those tests assert openai's
failure too, so that a change in openai shows up here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx2
import openai
import pytest
from openai._models import construct_type
from openai.types.chat import ChatCompletionChunk

import deltastream
from deltastream.engine._accumulate import ExtrasChatAccumulator
from deltastream.engine.types import ChoiceDelta
from tests._wire import WIRE_DIR, manifest

MAGISTRAL = "mistral/chat-magistral-content-parts.sse"
# openai's own model_dump() warns about a list where its schema has a string: what a
# program using openai sees too. The comparisons below dump with warnings=False.
PARTS_WARNING = "ignore:Pydantic serializer warnings:UserWarning"


def chunk_event(*choices: dict[str, Any]) -> bytes:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": list(choices),
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def event(delta: Any, finish_reason: str | None = None, index: int = 0) -> bytes:
    return chunk_event({"index": index, "delta": delta, "finish_reason": finish_reason})


def text_parts(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def thinking_parts(text: str) -> list[dict[str, Any]]:
    return [{"type": "thinking", "thinking": [{"type": "text", "text": text}]}]


DONE = b"data: [DONE]\n\n"
NULL_LAST = event({"role": "assistant", "content": "a"}) + event(None, "stop") + DONE
NULL_ONLY = event(None, "stop") + DONE
NULL_BESIDE_ANOTHER = (
    event({"role": "assistant", "content": "a"})
    + chunk_event(
        {"index": 0, "delta": None, "finish_reason": "stop"},
        {"index": 1, "delta": {"content": "b"}, "finish_reason": "stop"},
    )
    + DONE
)
NULL_BODIES = {"last": NULL_LAST, "only": NULL_ONLY, "beside-another": NULL_BESIDE_ANOTHER}
TEXT_PARTS = (
    event({"role": "assistant", "content": ""})
    + event({"content": text_parts("Hel")})
    + event({"content": text_parts("lo")})
    + event({"content": " w"}, "stop")
    + DONE
)
PARTS_FIRST = (
    event({"role": "assistant", "content": text_parts("Hel")})
    + event({"content": thinking_parts("hm")})
    + event({"content": text_parts("lo")}, "stop")
    + DONE
)


def _respond(body: bytes) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return handler


@contextmanager
def client_of(cls: Any, body: bytes) -> Iterator[Any]:
    http = httpx2.Client(transport=httpx2.MockTransport(_respond(body)))
    with cls(base_url="http://shapes/v1", api_key="sk-test", http_client=http, max_retries=0) as c:
        yield c


@asynccontextmanager
async def aclient_of(cls: Any, body: bytes) -> AsyncIterator[Any]:
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(_respond(body)))
    client = cls(base_url="http://shapes/v1", api_key="sk-test", http_client=http, max_retries=0)
    async with client:
        yield client


ASYNC = {openai.OpenAI: openai.AsyncOpenAI, deltastream.OpenAI: deltastream.AsyncOpenAI}


def chunks_of(cls: Any, body: bytes) -> list[Any]:
    with client_of(cls, body) as client:
        return list(client.chat.completions.create(model="m", messages=[], stream=True))


async def achunks_of(cls: Any, body: bytes) -> list[Any]:
    async with aclient_of(ASYNC[cls], body) as client:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        return [chunk async for chunk in stream]


def dumps(chunks: list[Any]) -> list[dict[str, Any]]:
    return [chunk.model_dump(warnings=False) for chunk in chunks]


def final_of(body: bytes) -> Any:
    with client_of(deltastream.OpenAI, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        return stream.get_final_completion()


def helper_of(cls: Any, body: bytes) -> tuple[list[Any], Any]:
    """The ``.stream()`` helper's events and its final completion."""
    with (
        client_of(cls, body) as client,
        client.chat.completions.stream(model="m", messages=[]) as stream,
    ):
        events = list(stream)
        return events, stream.get_final_completion()


async def ahelper_of(cls: Any, body: bytes) -> tuple[list[Any], Any]:
    async with (
        aclient_of(ASYNC[cls], body) as client,
        client.chat.completions.stream(model="m", messages=[]) as stream,
    ):
        events = [e async for e in stream]
        return events, await stream.get_final_completion()


def summary(events: list[Any]) -> list[tuple[str, Any]]:
    """Each event's type and what it carries besides the snapshot."""
    out: list[tuple[str, Any]] = []
    for e in events:
        if e.type == "chunk":
            out.append((e.type, e.chunk.model_dump(warnings=False)))
        else:
            out.append((e.type, getattr(e, "delta", getattr(e, "content", None))))
    return out


# -- "delta": null ---------------------------------------------------------------------


@pytest.mark.parametrize("body", NULL_BODIES.values(), ids=NULL_BODIES.keys())
def test_a_null_delta_is_handed_out_as_none_as_in_openai(body: bytes) -> None:
    theirs = chunks_of(openai.OpenAI, body)
    ours = chunks_of(deltastream.OpenAI, body)
    assert dumps(ours) == dumps(theirs)
    assert [type(c) for c in ours] == [type(c) for c in theirs]
    null = next(choice for choice in ours[-1].choices if choice.index == 0)
    assert (null.delta, null.finish_reason) == (None, "stop")


@pytest.mark.parametrize("body", NULL_BODIES.values(), ids=NULL_BODIES.keys())
async def test_a_null_delta_is_handed_out_as_none_as_in_openai_async(body: bytes) -> None:
    theirs = await achunks_of(openai.OpenAI, body)
    ours = await achunks_of(deltastream.OpenAI, body)
    assert dumps(ours) == dumps(theirs)


def test_the_snapshot_and_text_deltas_read_past_a_null_delta() -> None:
    final = final_of(NULL_BESIDE_ANOTHER)
    assert [(c.index, c.message.content, c.finish_reason) for c in final.choices] == [
        (0, "a", "stop"),
        (1, "b", "stop"),
    ]
    assert final_of(NULL_ONLY).choices[0].message.content is None
    with client_of(deltastream.OpenAI, NULL_LAST) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        assert list(stream.text_deltas()) == ["a"]
        assert stream.metrics.time_to_first_token is not None


async def test_text_deltas_read_past_a_null_delta_async() -> None:
    async with aclient_of(deltastream.AsyncOpenAI, NULL_LAST) as client:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        assert [t async for t in stream.text_deltas()] == ["a"]
        final = await stream.get_final_completion()
    assert (final.choices[0].message.content, final.choices[0].finish_reason) == ("a", "stop")


@pytest.mark.parametrize("body", NULL_BODIES.values(), ids=NULL_BODIES.keys())
def test_the_stream_helper_reads_a_null_delta_where_openais_fails(body: bytes) -> None:
    with pytest.raises(AttributeError):
        helper_of(openai.OpenAI, body)
    events, final = helper_of(deltastream.OpenAI, body)
    chunks = chunks_of(deltastream.OpenAI, body)
    assert [e.chunk.model_dump() for e in events if e.type == "chunk"] == dumps(chunks)
    assert [c.finish_reason for c in final.choices] == [
        c.finish_reason for c in final_of(body).choices
    ]
    assert final.choices[0].message.content == final_of(body).choices[0].message.content


async def test_the_stream_helper_reads_a_null_delta_async() -> None:
    with pytest.raises(AttributeError):
        await ahelper_of(openai.OpenAI, NULL_LAST)
    events, final = await ahelper_of(deltastream.OpenAI, NULL_LAST)
    assert [e.type for e in events] == ["chunk", "content.delta", "chunk", "content.done"]
    assert events[2].chunk.choices[0].delta is None
    assert (final.choices[0].message.content, final.choices[0].finish_reason) == ("a", "stop")


def test_the_native_client_reads_a_null_delta_as_an_empty_one() -> None:
    with client_of(deltastream.Client, NULL_LAST) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        chunks = list(stream)
        final = stream.current_snapshot
    assert chunks[-1].choices[0].delta == ChoiceDelta()
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].to_dict()["choices"][0]["delta"] is None  # as sent
    assert (final.choices[0].message.content, final.choices[0].finish_reason) == ("a", "stop")


# -- content as a list of typed parts --------------------------------------------------


def _magistral() -> bytes:
    return (WIRE_DIR / MAGISTRAL).read_bytes()


def _expected(file: str) -> Any:
    return next(c for c in manifest()["captures"] if c["file"] == file)["expected"]


def test_recorded_content_parts_are_handed_out_as_in_openai() -> None:
    theirs = chunks_of(openai.OpenAI, _magistral())
    ours = chunks_of(deltastream.OpenAI, _magistral())
    assert len(ours) == 158
    assert dumps(ours) == dumps(theirs)
    lists = [c for c in ours if isinstance(c.choices[0].delta.content, list)]
    assert len(lists) == 58
    assert all("thinking" not in (c.choices[0].delta.model_extra or {}) for c in ours)


async def test_recorded_content_parts_are_handed_out_as_in_openai_async() -> None:
    theirs = await achunks_of(openai.OpenAI, _magistral())
    ours = await achunks_of(deltastream.OpenAI, _magistral())
    assert dumps(ours) == dumps(theirs)


@pytest.mark.filterwarnings(PARTS_WARNING)
def test_the_stream_helper_on_recorded_content_parts_is_openais() -> None:
    theirs, their_final = helper_of(openai.OpenAI, _magistral())
    ours, our_final = helper_of(deltastream.OpenAI, _magistral())
    assert summary(ours) == summary(theirs)
    assert sum(e.type == "content.delta" for e in ours) == 158
    assert our_final.model_dump(warnings=False) == their_final.model_dump(warnings=False)


@pytest.mark.filterwarnings(PARTS_WARNING)
async def test_the_stream_helper_on_recorded_content_parts_is_openais_async() -> None:
    theirs, their_final = await ahelper_of(openai.OpenAI, _magistral())
    ours, our_final = await ahelper_of(deltastream.OpenAI, _magistral())
    assert summary(ours) == summary(theirs)
    assert our_final.model_dump(warnings=False) == their_final.model_dump(warnings=False)


@pytest.mark.filterwarnings(PARTS_WARNING)
def test_the_final_completion_of_recorded_content_parts() -> None:
    """openai's helper's content (the string deltas: the thinking parts it cannot add to
    a string), and the thinking the MANIFEST expects besides."""
    _, theirs = helper_of(openai.OpenAI, _magistral())
    ours = final_of(_magistral())
    want = _expected(MAGISTRAL)["choices"]["0"]
    message: Any = ours.choices[0].message
    assert message.content == theirs.choices[0].message.content == want["content"]
    assert message.thinking == want["thinking"]
    assert ours.choices[0].finish_reason == theirs.choices[0].finish_reason == "stop"
    assert ours.usage == theirs.usage


@pytest.mark.filterwarnings(PARTS_WARNING)
def test_text_parts_are_content_where_openais_helper_drops_them() -> None:
    assert dumps(chunks_of(deltastream.OpenAI, TEXT_PARTS)) == dumps(
        chunks_of(openai.OpenAI, TEXT_PARTS)
    )
    theirs, their_final = helper_of(openai.OpenAI, TEXT_PARTS)
    ours, _ = helper_of(deltastream.OpenAI, TEXT_PARTS)
    assert summary(ours) == summary(theirs)
    assert their_final.choices[0].message.content == " w"  # openai's helper loses "Hello"
    assert final_of(TEXT_PARTS).choices[0].message.content == "Hello w"
    with client_of(deltastream.OpenAI, TEXT_PARTS) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        assert list(stream.text_deltas()) == ["Hel", "lo", " w"]
        with client.chat.completions.stream(model="m", messages=[]) as helper:
            assert list(helper.text_deltas()) == ["", "Hel", "lo", " w"]


@pytest.mark.filterwarnings(PARTS_WARNING)
async def test_text_deltas_of_text_parts_async() -> None:
    async with aclient_of(deltastream.AsyncOpenAI, TEXT_PARTS) as client:
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        assert [t async for t in stream.text_deltas()] == ["Hel", "lo", " w"]
        async with client.chat.completions.stream(model="m", messages=[]) as helper:
            assert [t async for t in helper.text_deltas()] == ["", "Hel", "lo", " w"]


@pytest.mark.filterwarnings(PARTS_WARNING)
def test_content_parts_from_the_first_delta_where_openais_helper_fails() -> None:
    assert dumps(chunks_of(deltastream.OpenAI, PARTS_FIRST)) == dumps(
        chunks_of(openai.OpenAI, PARTS_FIRST)
    )
    with pytest.raises(RuntimeError, match="index"):
        helper_of(openai.OpenAI, PARTS_FIRST)
    message: Any = final_of(PARTS_FIRST).choices[0].message
    assert (message.content, message.thinking) == ("Hello", "hm")


def test_content_parts_over_a_long_stream_and_its_snapshots() -> None:
    """Far more parts than the accumulator joins at once, read mid-stream and at the
    end; thinking alone leaves the content None, as on the native face."""
    pieces = [event({"content": thinking_parts(f"t{i} ")}) for i in range(600)]
    pieces += [event({"content": text_parts(f"x{i} ")}) for i in range(300)]
    pieces += [event({"content": f"s{i} "}) for i in range(300)]
    body = b"".join(pieces) + DONE
    thinking = "".join(f"t{i} " for i in range(600))
    text = "".join(f"x{i} " for i in range(300)) + "".join(f"s{i} " for i in range(300))
    with client_of(deltastream.OpenAI, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        for count, _ in enumerate(stream, 1):
            if count == 500:
                middle: Any = stream.current_snapshot.choices[0].message
                assert middle.content is None
                assert middle.thinking == "".join(f"t{i} " for i in range(500))
        final: Any = stream.current_snapshot.choices[0].message
    assert (final.content, final.thinking) == (text, thinking)
    with client_of(deltastream.Client, body) as native:
        stream = native.chat.completions.create(model="m", messages=[], stream=True)
        stream.until_done()
        theirs = stream.current_snapshot.choices[0].message
    assert (theirs.content, theirs.thinking) == (text, thinking)


def test_a_long_run_of_content_parts_is_joined_as_it_goes() -> None:
    """Content as lists of text parts, chunk after chunk, is folded into blocks like
    string content: the pieces waiting to be joined stay under one block's worth (they
    once piled up, and every delta read them all again: quadratic)."""
    accumulator = ExtrasChatAccumulator()
    for i in range(3_000):
        data = json.loads(chunk_event({"index": 0, "delta": {"content": text_parts(f"{i} ")}})[6:])
        accumulator.add(construct_type(type_=ChatCompletionChunk, value=data))
        state = accumulator.find(0)
        assert state is not None
        assert state.content is not None
        assert len(state.content.recent) <= 256
    assert accumulator.text() == "".join(f"{i} " for i in range(3_000))
