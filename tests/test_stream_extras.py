"""What every stream offers beyond iteration: events, tool-call arguments, metrics, tee."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream.native import (
    ContentDeltaEvent,
    FinishEvent,
    ToolCallArgumentsDeltaEvent,
    ToolCallArgumentsDoneEvent,
    UsageEvent,
)

from ._helpers import MODES, async_client, chunk_json, event_stream, sse_body, sync_client


def tool_chunk(
    index: int | None, args: str, *, id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"function": {"arguments": args}}
    if index is not None:
        call["index"] = index
    if id is not None:
        call["id"], call["type"] = id, "function"
    if name is not None:
        call["function"]["name"] = name
    return {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}


TOOLS = sse_body(
    tool_chunk(0, "", id="call_a", name="get_weather"),
    tool_chunk(0, '{"city": "To'),
    tool_chunk(0, 'kyo"}'),
    tool_chunk(1, '{"q":', id="call_b", name="search"),
    tool_chunk(1, " 1}"),
    {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {
        "id": "c",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12},
    },
)


async def collect_events(mode: str, body: bytes, piece: int = 0) -> list[Any]:
    handler = lambda _: event_stream(body, piece=piece)  # noqa: E731
    if mode == "sync":
        stream = sync_client(handler).chat.completions.create(model="m", messages=[], stream=True)
        return list(stream.events())
    astream = await async_client(handler).chat.completions.create(
        model="m", messages=[], stream=True
    )
    return [e async for e in astream.events()]


@pytest.mark.parametrize("piece", [0, 3])
@pytest.mark.parametrize("mode", MODES)
async def test_tool_call_events_give_arguments_as_they_grow(mode: str, piece: int) -> None:
    events = await collect_events(mode, TOOLS, piece)
    deltas = [e for e in events if isinstance(e, ToolCallArgumentsDeltaEvent)]
    assert [(e.tool_index, e.delta) for e in deltas] == [
        (0, '{"city": "To'),
        (0, 'kyo"}'),
        (1, '{"q":'),
        (1, " 1}"),
    ]
    first = deltas[0]
    assert first.name == "get_weather"
    # Read at the end: the call's whole text; partial parsing tolerates a cut.
    assert first.arguments == '{"city": "Tokyo"}'
    done = [e for e in events if isinstance(e, ToolCallArgumentsDoneEvent)]
    assert [(d.id, d.name, d.parsed_arguments) for d in done] == [
        ("call_a", "get_weather", {"city": "Tokyo"}),
        ("call_b", "search", {"q": 1}),
    ]
    assert isinstance(events[-2], FinishEvent)
    assert events[-2].finish_reason == "tool_calls"
    assert isinstance(events[-1], UsageEvent)


def test_partial_arguments_parse_what_has_arrived() -> None:
    handler = lambda _: event_stream(TOOLS)  # noqa: E731
    stream = sync_client(handler).chat.completions.create(model="m", messages=[], stream=True)
    seen = []
    for event in stream.events():
        if isinstance(event, ToolCallArgumentsDeltaEvent) and event.tool_index == 0:
            seen.append(event.partial_arguments)
    assert seen == [{"city": "To"}, {"city": "Tokyo"}]


def test_content_snapshots_match_what_was_handed_over() -> None:
    body = sse_body(chunk_json("a"), chunk_json("b"), chunk_json("c"), chunk_json(finish="stop"))
    handler = lambda _: event_stream(body)  # noqa: E731 - all chunks arrive in one read
    stream = sync_client(handler).chat.completions.create(model="m", messages=[], stream=True)
    snapshots = [e.snapshot for e in stream.events() if isinstance(e, ContentDeltaEvent)]
    assert snapshots == ["a", "ab", "abc"]


def test_tool_calls_without_index_are_told_apart_by_id() -> None:
    body = sse_body(
        tool_chunk(None, '{"a": 1}', id="x", name="f"),
        tool_chunk(None, '{"b": 2}', id="y", name="g"),
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    )
    handler = lambda _: event_stream(body)  # noqa: E731
    stream = sync_client(handler).chat.completions.create(model="m", messages=[], stream=True)
    done = [e for e in stream.events() if isinstance(e, ToolCallArgumentsDoneEvent)]
    assert [(d.tool_index, d.name, d.parsed_arguments) for d in done] == [
        (0, "f", {"a": 1}),
        (1, "g", {"b": 2}),
    ]


def test_arguments_cut_by_length_name_the_tool() -> None:
    body = sse_body(
        tool_chunk(0, '{"cit', id="x", name="get_weather"),
        {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
    )
    handler = lambda _: event_stream(body)  # noqa: E731
    stream = sync_client(handler).chat.completions.create(model="m", messages=[], stream=True)
    call = stream.get_final_completion().choices[0].message.tool_calls
    assert call is not None
    with pytest.raises(deltastream.native.ToolArgumentsError, match="get_weather") as caught:
        call[0].function.parse_arguments()
    assert caught.value.arguments == '{"cit'


@pytest.mark.parametrize("mode", MODES)
async def test_tee_gives_every_iterator_every_chunk(mode: str) -> None:
    body = sse_body(*(chunk_json(str(i)) for i in range(20)))
    handler = lambda _: event_stream(body, piece=7)  # noqa: E731
    if mode == "sync":
        stream = sync_client(handler).chat.completions.create(model="m", messages=[], stream=True)
        a, b = stream.tee()
        first = [c.choices[0].delta.content for c in a]
        second = [c.choices[0].delta.content for c in b]
    else:
        astream = await async_client(handler).chat.completions.create(
            model="m", messages=[], stream=True
        )
        aa, ab = astream.tee()
        first = [c.choices[0].delta.content async for c in aa]
        second = [c.choices[0].delta.content async for c in ab]
    assert first == second == [str(i) for i in range(20)]


def test_tee_buffers_are_bounded_and_errors_reach_every_iterator() -> None:
    body = sse_body(*(chunk_json(str(i)) for i in range(5)), done=False)
    handler = lambda _: event_stream(body)  # noqa: E731
    client = sync_client(handler)
    a, b = client.chat.completions.create(model="m", messages=[], stream=True).tee(max_buffer=2)
    next(a)
    next(a)
    with pytest.raises(deltastream.TeeBufferFull):
        next(a)
    a, b = client.chat.completions.create(model="m", messages=[], stream=True).tee()
    with pytest.raises(deltastream.native.StreamTruncatedError):
        list(a)
    assert len([next(b) for _ in range(5)]) == 5
    with pytest.raises(deltastream.native.StreamTruncatedError):
        next(b)


@pytest.mark.parametrize("mode", MODES)
async def test_metrics_describe_the_stream(mode: str, server_url: str) -> None:
    kwargs: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "Count to 20"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if mode == "sync":
        with deltastream.Client(base_url=server_url) as client:
            stream = client.chat.completions.create(**kwargs)
            stream.until_done()
            metrics = stream.metrics
    else:
        async with deltastream.AsyncClient(base_url=server_url) as aclient:
            astream = await aclient.chat.completions.create(**kwargs)
            await astream.until_done()
            metrics = astream.metrics
    assert metrics.chunks > 5
    assert metrics.bytes > 500
    assert metrics.retries == 0
    assert metrics.completion_tokens is not None
    assert metrics.completion_tokens > 0
    ttft = metrics.time_to_first_token
    assert ttft is not None
    assert 0 <= metrics.time_to_first_byte <= ttft
    assert "ttft=" in repr(metrics)


def test_gap_percentiles_come_from_bounded_buckets() -> None:
    metrics = deltastream.StreamMetrics(sent_at=0.0, headers_at=0.01)
    now = 0.02
    for i in range(1000):
        now += 0.010 if i % 20 else 0.5  # mostly 10 ms, every 20th read half a second
        metrics.on_read(now, 100, 1)
    p50, p95 = metrics.gap_p50, metrics.gap_p95
    assert p50 is not None
    assert p95 is not None
    assert 0.010 <= p50 <= 0.0115  # within one bucket above the true value
    assert p95 <= 0.0115
    assert metrics.max_gap == pytest.approx(0.5)
    assert metrics.gap_percentile(99.9) == pytest.approx(0.5)


@pytest.mark.parametrize("gaps", [1, 3, 63, 64, 65, 200])
def test_gap_percentiles_count_every_gap_folded_or_not(gaps: int) -> None:
    metrics = deltastream.StreamMetrics(sent_at=0.0, headers_at=0.0)
    now = 0.0
    metrics.on_read(now, 10, 1)
    for i in range(gaps):
        now += 0.5 if i == gaps - 1 else 0.001  # the last gap the longest
        metrics.on_read(now, 10, 1)
    assert metrics.chunks == gaps + 1
    assert metrics.gap_percentile(100) == pytest.approx(0.5)
    median = metrics.gap_p50
    assert median is not None
    assert median == pytest.approx(0.5) if gaps < 3 else 0.001 <= median <= 0.00115


def test_retries_show_in_metrics() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx2.Response(503, headers={"retry-after-ms": "1"})
        return event_stream(sse_body(chunk_json("x")))

    stream = sync_client(handler).chat.completions.create(model="m", messages=[], stream=True)
    stream.until_done()
    assert stream.metrics.retries == 1
