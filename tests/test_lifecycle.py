"""A stream's lifecycle keeps its promises, over real sockets (async tests also run on
uvloop): a finished stream returns at once, idle measures the server and not the
consumer, one total deadline covers retries and their waits, each timeout names its
deadline, sse_events() carries what it delivered and keeps the end-of-stream rule,
events_received counts what was handed over, resumable streams resume after a silent
connection and after an empty body, and a partial result's memory stays near its text's
size."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tracemalloc
from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream import Timeout
from deltastream.engine._accumulate import ChatAccumulator
from deltastream.engine._decode import decode_chat_chunk
from deltastream.engine._protocol import ChunkStream

from ._raw_server import LAST_CHUNK, RawServer, Reply, Seen, Serve, chunk

STORY: Any = [{"role": "user", "content": "Write a story about a robot."}]
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def event(payload: object) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return chunk(f"data: {data}\n\n".encode())


def text(content: str, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": finish}
    return event({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                  "choices": [choice]})  # fmt: skip


WORDS = [text(word) for word in ("Once", " upon", " a", " time")]
DONE = event("[DONE]")


def base(server: RawServer) -> str:
    return f"{server.url}/v1"


def sync_client(server: RawServer, **options: Any) -> deltastream.Client:
    return deltastream.Client(base_url=base(server), **options)


def async_client(server: RawServer, **options: Any) -> deltastream.AsyncClient:
    return deltastream.AsyncClient(base_url=base(server), **options)


# -- a finished stream returns at once --------------------------------------------------


def test_a_body_held_open_after_done_does_not_hold_the_consumer(serve: Serve) -> None:
    """[DONE], then the body stays open (the server or a proxy holds it for seconds):
    the loop ends at once and the connection, which cannot be reused, is dropped."""
    never = threading.Event()
    server = serve(lambda seen: Reply([SSE_HEAD, *WORDS, DONE, never, LAST_CHUNK]))
    with sync_client(server, max_retries=0) as client:
        started = time.monotonic()
        stream = client.chat.completions.create(model="m", messages=STORY, stream=True)
        assert "".join(stream.text_deltas()) == "Once upon a time"
        assert time.monotonic() - started < 2.0  # the server holds it for 5 s
        client.chat.completions.create(model="m", messages=STORY, stream=True).close()
    assert server.connections_of() == [0, 1]


async def test_a_body_held_open_after_done_does_not_hold_the_consumer_async(serve: Serve) -> None:
    never = threading.Event()
    server = serve(lambda seen: Reply([SSE_HEAD, *WORDS, DONE, never, LAST_CHUNK]))
    async with async_client(server, max_retries=0) as client:
        started = time.monotonic()
        stream = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        final = await stream.get_final_completion()
        assert final.choices[0].message.content == "Once upon a time"
        assert time.monotonic() - started < 2.0


def test_a_body_that_ends_just_after_done_keeps_its_connection(serve: Serve) -> None:
    server = serve(lambda seen: Reply([SSE_HEAD, *WORDS, DONE, 0.01, LAST_CHUNK]))
    with sync_client(server) as client:
        for _ in range(3):
            client.chat.completions.create(model="m", messages=STORY, stream=True).until_done()
    assert server.connections_of() == [0, 0, 0]


# -- idle measures the server, not the consumer -----------------------------------------


def trickle(seen: Seen) -> Reply:
    """An event every 50 ms: a healthy stream."""
    steps: list[Any] = [SSE_HEAD]
    for word in WORDS:
        steps += [word, 0.05]
    return Reply([*steps, DONE, LAST_CHUNK])


def test_a_consumer_slower_than_idle_loses_nothing(serve: Serve) -> None:
    server = serve(trickle)
    with sync_client(server, timeout=Timeout(idle=0.2)) as client:
        got = []
        for chunk_ in client.chat.completions.create(model="m", messages=STORY, stream=True):
            got.append(chunk_)
            time.sleep(0.4)  # a UI update, a database write: longer than idle
    assert len(got) == 4


async def test_a_consumer_slower_than_idle_loses_nothing_async(serve: Serve) -> None:
    server = serve(trickle)
    async with async_client(server, timeout=Timeout(idle=0.2)) as client:
        stream = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        got = []
        async for chunk_ in stream:
            got.append(chunk_)
            await asyncio.sleep(0.4)
    assert len(got) == 4


async def test_a_float_timeout_behaves_as_openai_pythons_for_a_slow_consumer(
    serve: Serve,
) -> None:
    """openai-python's timeout=N bounds each socket read, so a slow consumer never trips
    it; here a float sets idle (and first_token), which now measure the server alike."""
    server = serve(trickle)
    async with deltastream.AsyncOpenAI(base_url=base(server), timeout=0.3) as client:
        stream = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        count = 0
        async for _ in stream:
            count += 1
            await asyncio.sleep(0.5)
    assert count == 4


def test_a_server_that_goes_quiet_still_trips_idle(serve: Serve) -> None:
    server = serve(lambda seen: Reply([SSE_HEAD, WORDS[0], threading.Event()]))
    with sync_client(server, max_retries=0, timeout=Timeout(idle=0.3)) as client:
        stream = client.chat.completions.create(model="m", messages=STORY, stream=True)

        def consume() -> None:
            for _ in stream:
                time.sleep(0.5)  # the consumer's time before the stall does not count

        with pytest.raises(deltastream.native.APITimeoutError) as caught:
            consume()
    assert caught.value.deadline == "idle"
    assert caught.value.events_received == 1


# -- one total deadline; timeouts named for their deadline -------------------------------


def silent(seen: Seen) -> Reply:
    """Reads the request and never answers (until the test ends)."""
    return Reply([threading.Event()])


def test_total_bounds_every_attempt_and_retry(serve: Serve) -> None:
    server = serve(silent)
    timeout = Timeout(first_token=60, total=1.0)
    with sync_client(server, max_retries=5, timeout=timeout) as client:
        started = time.monotonic()
        with pytest.raises(deltastream.native.APITimeoutError) as caught:
            client.chat.completions.create(model="m", messages=STORY, stream=True)
        elapsed = time.monotonic() - started
    assert (caught.value.deadline, caught.value.seconds) == ("total", 1.0)
    assert elapsed < 2.5  # one attempt's worth, not six with waits between them
    assert len(server.connections_of()) == 1


async def test_a_retry_wait_past_total_is_not_taken(serve: Serve) -> None:
    refuse = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 5\r\nContent-Length: 2\r\n\r\n{}"
    server = serve(lambda seen: Reply([refuse]))
    async with async_client(server, max_retries=3, timeout=Timeout(total=2.0)) as client:
        started = time.monotonic()
        with pytest.raises(deltastream.native.RateLimitError):
            await client.chat.completions.create(model="m", messages=STORY, stream=True)
        assert time.monotonic() - started < 1.5  # not the 5 s it asked for
    assert len(server.connections_of()) == 1


def test_waiting_for_the_response_head_is_the_first_token_deadline(serve: Serve) -> None:
    server = serve(silent)
    client = sync_client(server, max_retries=0, timeout=Timeout(first_token=0.3))
    with client, pytest.raises(deltastream.native.APITimeoutError) as caught:
        client.chat.completions.create(model="m", messages=STORY, stream=True)
    assert (caught.value.deadline, caught.value.seconds) == ("first_token", 0.3)


# -- sse_events() ------------------------------------------------------------------------


def test_sse_events_carry_what_they_delivered(serve: Serve) -> None:
    server = serve(lambda seen: Reply([SSE_HEAD, *WORDS[:3]], close=True))  # cut short
    with sync_client(server, max_retries=0) as client:
        stream = client.chat.completions.create(model="m", messages=STORY, stream=True)
        got: list[Any] = []
        with pytest.raises(deltastream.native.APIConnectionError) as caught:
            got.extend(stream.sse_events())
    assert len(got) == 3
    assert caught.value.events_received == 3
    assert caught.value.partial is None  # raw events are not accumulated


async def test_sse_events_keep_the_end_of_stream_rule(serve: Serve) -> None:
    server = serve(lambda seen: Reply([SSE_HEAD, *WORDS, LAST_CHUNK]))  # no [DONE]
    async with async_client(server, max_retries=0) as client:
        stream = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        got: list[Any] = []

        async def consume() -> None:
            async for sse in stream.sse_events():
                got.append(sse)

        with pytest.raises(deltastream.native.StreamTruncatedError) as caught:
            await consume()
    assert len(got) == 4
    assert caught.value.events_received == 4


# -- events_received ---------------------------------------------------------------------


def test_events_received_counts_what_was_handed_over(serve: Serve) -> None:
    server = serve(lambda seen: Reply([SSE_HEAD, b"".join(WORDS), DONE, LAST_CHUNK]))
    with sync_client(server) as client:
        stream = client.chat.completions.create(model="m", messages=STORY, stream=True)
        for count, _ in enumerate(stream, 1):  # four events in one read: stop after two
            if count == 2:
                break
        assert stream.events_received == 2
        assert stream.current_snapshot.choices[0].message.content == "Once upon"


# -- resuming ----------------------------------------------------------------------------

RESUME_FILE = "openai/responses-background-resume.sse"


def test_a_background_stream_gone_silent_is_resumed(replay_url: str) -> None:
    """A half-open connection (a NAT or load balancer forgot it): nothing arrives, no
    error either. Past idle, a background response's stream is opened again from the
    last event handed over."""
    stall = {"X-Deltastream-Fault": "stall-after=4:30"}
    timeout = Timeout(idle=0.5)
    with deltastream.Client(base_url=replay_url, max_retries=5, timeout=timeout) as client:
        stream = client.responses.create(
            model=RESUME_FILE, stream=True, background=True, extra_headers=stall
        )
        numbers = [e.sequence_number for e in stream]
    assert numbers == list(range(1, 17))  # every event once, in order
    assert stream.metrics.resumes >= 1
    assert stream.events_received == 16


async def test_a_background_stream_gone_silent_is_resumed_async(replay_url: str) -> None:
    stall = {"X-Deltastream-Fault": "stall-after=4:30"}
    async with deltastream.AsyncOpenAI(
        base_url=replay_url, max_retries=5, timeout=Timeout(idle=0.5)
    ) as client:
        stream: Any = await client.responses.create(
            model=RESUME_FILE, input="hi", stream=True, background=True, extra_headers=stall
        )
        numbers = [e.sequence_number async for e in stream]
    assert numbers == list(range(1, 17))
    assert stream.metrics.resumes >= 1


def test_total_is_final_even_for_a_resumable_stream(replay_url: str) -> None:
    stall = {"X-Deltastream-Fault": "stall-after=4:30"}
    timeout = Timeout(idle=0.3, total=0.8)
    with deltastream.Client(base_url=replay_url, max_retries=50, timeout=timeout) as client:
        stream = client.responses.create(
            model=RESUME_FILE, stream=True, background=True, extra_headers=stall
        )
        with pytest.raises(deltastream.native.APITimeoutError) as caught:
            for _ in stream:
                pass
    assert caught.value.deadline == "total"


def responses_event(kind: str, seq: int, **fields: Any) -> bytes:
    return event({"type": kind, "sequence_number": seq, **fields})


RESPONSE = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}


def empty_then_whole(seen: Seen) -> Reply:
    if server_state["first"]:
        server_state["first"] = False
        return Reply([SSE_HEAD, LAST_CHUNK])  # 200, and not one event
    events = [
        responses_event("response.created", 0, response=RESPONSE),
        responses_event("response.output_text.delta", 1, output_index=0, delta="Hi"),
        responses_event("response.completed", 2, response={**RESPONSE, "status": "completed"}),
    ]
    return Reply([SSE_HEAD, *events, LAST_CHUNK])


server_state: dict[str, bool] = {}


def test_an_empty_body_is_retried_where_no_second_generation_can_start(serve: Serve) -> None:
    """Streaming a stored response again (retrieve) cannot start a generation: an
    empty 200 is opened again. A chat POST could have: it is an error, not retried."""
    server_state["first"] = True
    server = serve(empty_then_whole)
    with sync_client(server, max_retries=2) as client:
        stream = client.responses.retrieve("resp_1", stream=True)
        assert "".join(stream.text_deltas()) == "Hi"
        assert stream.metrics.resumes == 1
    empty = serve(lambda seen: Reply([SSE_HEAD, LAST_CHUNK]))
    with sync_client(empty, max_retries=2) as client:
        chat = client.chat.completions.create(model="m", messages=STORY, stream=True)
        with pytest.raises(deltastream.native.StreamTruncatedError):
            chat.until_done()
    assert len(empty.connections_of()) == 1


# -- memory ------------------------------------------------------------------------------


def test_the_partial_holds_about_its_texts_size() -> None:
    """Before, every delta cost a string object in a list (about 58 bytes for a delta
    of two characters): an endless stream of tiny deltas grew without bound in memory
    well beyond its text."""
    chunks = [
        decode_chat_chunk(b'{"choices":[{"index":0,"delta":{"content":"%02d"}}]}' % (i % 100))
        for i in range(200_000)
    ]
    accumulator = ChatAccumulator()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for chunk_ in chunks:
            accumulator.add(chunk_)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    text_size = 2 * len(chunks)  # 400 KB of text
    assert grown < 2 * text_size, f"{grown} bytes held for {text_size} bytes of text"
    assert len(accumulator.text()) == text_size


def test_streams_share_the_model_and_role_they_repeat() -> None:
    # An open stream's accumulator holds no copy of its first chunk's model and role.
    raw = b'{"id":"c%d","model":"gpt-test","choices":[{"index":0,"delta":{"role":"assistant"}}]}'
    first, second = ChatAccumulator(), ChatAccumulator()
    first.add(decode_chat_chunk(raw % 1))
    second.add(decode_chat_chunk(raw % 2))
    one, two = first.snapshot(), second.snapshot()
    assert (two.model, two.choices[0].message.role) == ("gpt-test", "assistant")
    assert two.model is one.model
    assert two.choices[0].message.role is one.choices[0].message.role
    assert (one.id, two.id) == ("c1", "c2")


def test_what_one_choice_carries_beyond_text_is_its_own() -> None:
    # Choices with text only share one empty record of the rest: a choice that
    # carries more gets its own, and no other choice sees it.
    rich = ChatAccumulator()
    rich.add(
        decode_chat_chunk(
            b'{"choices":[{"index":0,"delta":{"refusal":"no","tool_calls":[{"index":0,'
            b'"id":"t","function":{"name":"f","arguments":"{}"}}]},'
            b'"logprobs":{"content":[]}}]}'
        )
    )
    plain = ChatAccumulator()
    plain.add(decode_chat_chunk(b'{"choices":[{"index":0,"delta":{"content":"hi"}}]}'))
    rich_choice, plain_choice = rich.snapshot().choices[0], plain.snapshot().choices[0]
    assert rich_choice.message.refusal == "no"
    assert rich_choice.message.tool_calls is not None
    assert rich_choice.message.tool_calls[0].function.arguments == "{}"
    assert rich_choice.logprobs is not None
    assert plain_choice.message.content == "hi"
    assert plain_choice.message.refusal is None
    assert plain_choice.message.tool_calls is None
    assert plain_choice.logprobs is None


_CHUNK_EVENT = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
)


def _stream_core() -> ChunkStream:
    request = httpx2.Request("POST", "http://x/v1/chat/completions")
    return ChunkStream(httpx2.Response(200, request=request), accumulate=False)


def test_the_first_read_is_decoded_as_its_chunks_are_handed_over() -> None:
    # The first chunk goes out before the rest of the first read is decoded: the bad
    # event after it is met only when the caller asks for the next one.
    core = _stream_core()
    items = iter(core.feed(_CHUNK_EVENT + b"data: {not json\n\n"))
    assert next(items).choices[0].delta.content == "a"
    assert core.failure is None
    assert list(items) == []
    assert isinstance(core.failure, deltastream.native.StreamDecodeError)


def test_later_reads_are_decoded_whole() -> None:
    core = _stream_core()
    assert len(list(core.feed(_CHUNK_EVENT))) == 1
    items = core.feed(_CHUNK_EVENT + b"data: {not json\n\n")
    assert isinstance(core.failure, deltastream.native.StreamDecodeError)  # met at once
    assert [chunk.choices[0].delta.content for chunk in items] == ["a"]
    assert core.carries_token()


def test_a_background_stream_whose_client_was_closed_is_not_resumed(replay_url: str) -> None:
    """Closing the client ends its streams; a resumable one must not try to open again
    through the closed client (httpx2 would refuse with a bare RuntimeError)."""
    stall = {"X-Deltastream-Fault": "stall-after=4:30"}
    client = deltastream.Client(base_url=replay_url, max_retries=5)
    stream = client.responses.create(
        model=RESUME_FILE, stream=True, background=True, extra_headers=stall
    )
    seen = [next(stream).sequence_number, next(stream).sequence_number]
    client.close()
    with pytest.raises(deltastream.native.APIConnectionError, match="client was closed"):
        seen.extend(event.sequence_number for event in stream)
    assert seen[:2] == [1, 2]
    assert stream.metrics.resumes == 0


async def test_a_background_stream_whose_client_was_closed_is_not_resumed_async(
    replay_url: str,
) -> None:
    stall = {"X-Deltastream-Fault": "stall-after=4:30"}
    client = deltastream.AsyncClient(base_url=replay_url, max_retries=5)
    stream = await client.responses.create(
        model=RESUME_FILE, stream=True, background=True, extra_headers=stall
    )
    await stream.__anext__()
    await client.close()
    with pytest.raises(deltastream.native.APIConnectionError, match="client was closed"):
        async for _ in stream:
            pass
    assert stream.metrics.resumes == 0
