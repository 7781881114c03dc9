"""The client against the real local server over loopback sockets: lifecycle,
deadlines and injected faults, each test body run with the sync and async client."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
import deltastream.sse
from deltastream import Timeout
from deltastream.engine.types import ChatCompletion

from ._helpers import MODES

FAULT = "X-Deltastream-Fault"
STORY = [{"role": "user", "content": "Write a story about a robot."}]


def stats(base_url: str) -> dict[str, Any]:
    root = base_url.removesuffix("/v1")
    result: dict[str, Any] = httpx2.get(f"{root}/_deltastream/stats").json()
    return result


def wait_for_open_connections(base_url: str, expected: int, within: float = 5.0) -> int:
    deadline = time.monotonic() + within
    while True:
        # Less one: the connection this stats request is itself using.
        count = int(stats(base_url)["open_connections"]) - 1
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


async def run_stream(
    mode: str,
    base_url: str,
    *,
    fault: str | None = None,
    limit: int | None = None,
    **create: Any,
) -> tuple[str, ChatCompletion]:
    """Stream a chat answer (optionally stopping after ``limit`` chunks); return the
    text read and the accumulated snapshot."""
    headers = {FAULT: fault} if fault else None
    create.setdefault("messages", STORY)
    create.setdefault("model", "m")
    text: list[str] = []
    if mode == "sync":
        with deltastream.Client(base_url=base_url) as client:
            stream = client.chat.completions.create(stream=True, extra_headers=headers, **create)
            with stream:
                for i, chunk in enumerate(stream):
                    if limit is not None and i >= limit:
                        break
                    text.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
            return "".join(text), stream.current_snapshot
    async with deltastream.AsyncClient(base_url=base_url) as aclient:
        astream = await aclient.chat.completions.create(
            stream=True, extra_headers=headers, **create
        )
        async with astream:
            i = 0
            async for chunk in astream:
                if limit is not None and i >= limit:
                    break
                i += 1
                text.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
        return "".join(text), astream.current_snapshot


@pytest.mark.parametrize("mode", MODES)
async def test_a_story_streams_end_to_end(mode: str, server_url: str) -> None:
    text, final = await run_stream(mode, server_url, stream_options={"include_usage": True})
    assert "robot" in text.lower()
    assert final.choices[0].message.content == text
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None
    assert final.usage.completion_tokens > 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_thousand_abandoned_streams_leave_no_connection_open(
    mode: str, private_url: str
) -> None:
    await run_many_abandoned(mode, private_url, 1000)
    assert wait_for_open_connections(private_url, 0) == 0


async def run_many_abandoned(mode: str, base_url: str, count: int) -> None:
    """Open ``count`` streams one after another on one client, each abandoned after
    3 chunks by leaving the loop (and letting the stream go)."""
    if mode == "sync":
        with deltastream.Client(base_url=base_url) as client:
            for _ in range(count):
                stream = client.chat.completions.create(model="m", messages=STORY, stream=True)
                for i, _chunk in enumerate(stream):
                    if i == 2:
                        break
                del stream
        return
    async with deltastream.AsyncClient(base_url=base_url) as aclient:
        for _ in range(count):
            astream = await aclient.chat.completions.create(model="m", messages=STORY, stream=True)
            async with astream:
                i = 0
                async for _chunk in astream:
                    i += 1
                    if i == 3:
                        break


@pytest.mark.parametrize("mode", MODES)
async def test_sequential_streams_reuse_one_connection(mode: str, private_url: str) -> None:
    if mode == "sync":
        with deltastream.Client(base_url=private_url) as client:
            for _ in range(100):
                with client.chat.completions.create(model="m", messages=STORY, stream=True) as s:
                    assert s.get_final_completion().choices[0].finish_reason == "stop"
    else:
        async with deltastream.AsyncClient(base_url=private_url) as aclient:
            for _ in range(100):
                astream = await aclient.chat.completions.create(
                    model="m", messages=STORY, stream=True
                )
                final = await astream.get_final_completion()
                assert final.choices[0].finish_reason == "stop"
    # Two: the streams' one, and the one this stats request itself opens.
    assert stats(private_url)["total_connections"] == 2


def _read_one_then_fail(stream: deltastream.native.Stream[Any]) -> None:
    with stream:
        next(stream)
        raise RuntimeError("caller gave up")


async def _aread_one_then_fail(stream: deltastream.native.AsyncStream[Any]) -> None:
    async with stream:
        await stream.__anext__()
        raise RuntimeError("caller gave up")


@pytest.mark.parametrize("how", ["close", "break", "exception"])
@pytest.mark.parametrize("mode", MODES)
async def test_abandoned_streams_release_their_connection_at_once(
    mode: str, how: str, private_url: str
) -> None:
    headers = {FAULT: "stall-after=3:30"}  # the server would hold the stream for 30 s
    if mode == "sync":
        client = deltastream.Client(base_url=private_url)
        for _ in range(20):
            stream = client.chat.completions.create(
                model="m", messages=STORY, stream=True, extra_headers=headers
            )
            if how == "close":
                next(stream)
                stream.close()
            elif how == "break":
                for _chunk in stream:
                    break
                del stream
            else:
                with pytest.raises(RuntimeError, match="gave up"):
                    _read_one_then_fail(stream)
        gc.collect()
        client.close()
    else:
        aclient = deltastream.AsyncClient(base_url=private_url)
        for _ in range(20):
            astream = await aclient.chat.completions.create(
                model="m", messages=STORY, stream=True, extra_headers=headers
            )
            if how == "close":
                await astream.__anext__()
                await astream.close()
            elif how == "break":
                async for _chunk in astream:
                    break
                await astream.close()
            else:
                with pytest.raises(RuntimeError, match="gave up"):
                    await _aread_one_then_fail(astream)
        await aclient.close()
    assert wait_for_open_connections(private_url, 0) == 0


async def test_cancelling_an_async_consumer_closes_the_response(private_url: str) -> None:
    aclient = deltastream.AsyncClient(base_url=private_url)
    started = asyncio.Event()

    async def consume() -> None:
        stream = await aclient.chat.completions.create(
            model="m", messages=STORY, stream=True, extra_headers={FAULT: "stall-after=2:30"}
        )
        async with stream:
            async for _ in stream:
                started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await aclient.close()
    assert await asyncio.to_thread(wait_for_open_connections, private_url, 0) == 0


@pytest.mark.parametrize(
    ("fault", "deadlines", "deadline"),
    [
        ("headers-only", Timeout(first_token=0.5), "first_token"),
        ("trickle=0.1", Timeout(first_token=0.6), "first_token"),
        ("stall-after=3:30", Timeout(idle=0.5), "idle"),
        ("stall-after=3:30", Timeout(idle=10, total=0.8), "total"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
async def test_deadlines_hold_against_a_silent_server(
    mode: str, server_url: str, fault: str, deadlines: Timeout, deadline: str
) -> None:
    started = time.monotonic()
    with pytest.raises(deltastream.native.APITimeoutError) as caught:
        await run_stream(mode, server_url, fault=fault, timeout=deadlines, max_retries=0)
    elapsed = time.monotonic() - started
    assert caught.value.deadline == deadline
    assert f"{deadline} deadline" in str(caught.value)
    assert elapsed < 5  # nowhere near the server's stall
    if fault.startswith("stall"):
        assert caught.value.events_received == 3
        assert caught.value.partial.choices[0].message.content


@pytest.mark.parametrize("mode", MODES)
async def test_a_pause_past_first_token_but_within_idle_is_no_timeout(
    mode: str, server_url: str
) -> None:
    # Once events flow, only idle (and total) bound a pause: the first_token deadline,
    # which also bounds waiting for the response head, is not a per-read timeout.
    deadlines = Timeout(first_token=0.3, idle=5.0)
    text, snapshot = await run_stream(
        mode, server_url, fault="stall-after=2:0.8", timeout=deadlines, max_retries=0
    )
    assert text
    assert snapshot.choices[0].finish_reason is not None


async def test_an_open_stream_on_a_socket_waits_with_no_timer_of_its_own(private_url: str) -> None:
    # Its watchdog keeps the deadlines: a read waits without a per-read timeout, and
    # ten thousand open streams hold no timer each in the event loop.
    headers = {FAULT: "stall-after=2:0.5"}
    async with deltastream.AsyncClient(base_url=private_url) as client:
        stream = await client.chat.completions.create(
            model="m", messages=STORY, stream=True, extra_headers=headers
        )
        async with stream:
            await stream.__anext__()
            await stream.__anext__()
            reading = asyncio.ensure_future(stream.__anext__())
            await asyncio.sleep(0.1)  # the two chunks sent before the stall are taken
            assert not reading.done()
            loop: Any = asyncio.get_running_loop()
            timers = [h for h in loop._scheduled if not h.cancelled()]
            assert not any("_on_timer" in repr(h) for h in timers)
            assert stream.response.request.extensions["timeout"]["read"] is None
            await reading
            assert [chunk async for chunk in stream]


def test_a_stream_whose_socket_is_out_of_reach_keeps_a_per_read_backstop() -> None:
    # No socket for the watchdog to shut down: the per-read timeout is all there is.
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = b'data: {"choices": []}\n\ndata: [DONE]\n\n'
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    timeout = Timeout(first_token=7.0, idle=2.0)
    with deltastream.Client(base_url="http://test/v1", http_client=http, timeout=timeout) as client:
        stream = client.chat.completions.create(model="m", messages=STORY, stream=True)
        assert stream.response.request.extensions["timeout"]["read"] == 8.0
        stream.until_done()


@pytest.mark.parametrize("mode", MODES)
async def test_keepalive_comments_count_when_asked(mode: str, server_url: str) -> None:
    # With comments counting as progress, a trickle never trips the idle deadline;
    # the total deadline still ends it.
    deadlines = Timeout(idle=0.3, total=1.0, comments_count=True)
    with pytest.raises(deltastream.native.APITimeoutError) as caught:
        await run_stream(mode, server_url, fault="trickle=0.1", timeout=deadlines, max_retries=0)
    assert caught.value.deadline == "total"


@pytest.mark.parametrize("mode", MODES)
async def test_a_dropped_connection_keeps_what_arrived(mode: str, server_url: str) -> None:
    with pytest.raises(deltastream.native.APIConnectionError) as caught:
        await run_stream(mode, server_url, fault="drop-after=4")
    assert not isinstance(caught.value, deltastream.native.APITimeoutError)
    assert caught.value.events_received == 4
    assert caught.value.partial.choices[0].message.content


@pytest.mark.parametrize("mode", MODES)
async def test_missing_done_is_truncation_unless_waived(mode: str, server_url: str) -> None:
    with pytest.raises(deltastream.native.StreamTruncatedError) as caught:
        await run_stream(mode, server_url, fault="no-done")
    assert caught.value.partial.choices[0].finish_reason == "stop"
    text, final = await run_stream(mode, server_url, fault="no-done", require_done=False)
    assert final.choices[0].message.content == text


@pytest.mark.parametrize("mode", MODES)
async def test_garbage_mid_stream_is_a_decode_error(mode: str, server_url: str) -> None:
    with pytest.raises(deltastream.native.StreamDecodeError) as caught:
        await run_stream(mode, server_url, fault="garbage-after=2")
    assert caught.value.data == b"{this is not json"
    assert caught.value.events_received == 2


@pytest.mark.parametrize("mode", MODES)
async def test_in_band_error_from_the_server(mode: str, server_url: str) -> None:
    with pytest.raises(deltastream.native.APIStreamError) as caught:
        await run_stream(mode, server_url, fault="error-after=3")
    assert caught.value.code == "injected"
    assert caught.value.events_received == 3


@pytest.mark.parametrize("mode", MODES)
async def test_retry_after_503_then_success(mode: str, server_url: str) -> None:
    key = f"retry-{mode}-{time.monotonic_ns()}"
    text, _ = await run_stream(
        mode, server_url, fault=f"status=503;times=2;retry-after-ms=20;key={key}"
    )
    assert "robot" in text.lower()


@pytest.mark.parametrize("mode", MODES)
async def test_wrong_content_type_is_reported(mode: str, server_url: str) -> None:
    with pytest.raises(deltastream.native.APIResponseValidationError, match="application/json"):
        await run_stream(mode, server_url, fault="content-type=application/json")


@pytest.mark.parametrize("mode", MODES)
async def test_a_huge_line_is_bounded(mode: str, server_url: str) -> None:
    with pytest.raises(deltastream.native.StreamDecodeError, match="max_event_size") as caught:
        await run_stream(mode, server_url, fault=f"huge-line={20 * 1024 * 1024}")
    assert caught.value.events_received == 1


def test_cancel_from_another_thread_ends_the_loop_quietly(private_url: str) -> None:
    client = deltastream.Client(base_url=private_url)
    stream = client.chat.completions.create(
        model="m", messages=STORY, stream=True, extra_headers={FAULT: "stall-after=3:30"}
    )
    received = []
    timer = threading.Timer(0.3, stream.cancel)
    timer.start()
    started = time.monotonic()
    for chunk in stream:  # blocks in the stall until the other thread cancels
        received.append(chunk)
    timer.join()
    assert time.monotonic() - started < 5
    assert stream.cancelled
    assert len(received) == 3
    assert stream.current_snapshot.choices[0].message.content
    client.close()
    assert wait_for_open_connections(private_url, 0) == 0


async def test_cancel_from_another_task_ends_the_loop_quietly(private_url: str) -> None:
    aclient = deltastream.AsyncClient(base_url=private_url)
    stream = await aclient.chat.completions.create(
        model="m", messages=STORY, stream=True, extra_headers={FAULT: "stall-after=3:30"}
    )
    received = []

    async def consume() -> None:
        async for chunk in stream:
            received.append(chunk)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    stream.cancel()
    await asyncio.wait_for(task, 5)
    assert len(received) == 3
    await aclient.close()
    assert await asyncio.to_thread(wait_for_open_connections, private_url, 0) == 0


@pytest.mark.parametrize("mode", MODES)
async def test_sse_events_give_the_raw_events(mode: str, replay_url: str) -> None:
    recording = "groq/chat-event-error-after-text.sse"  # ends with `event: error`
    if mode == "sync":
        with deltastream.Client(base_url=replay_url) as client:
            stream = client.chat.completions.create(model=recording, messages=[], stream=True)
            events = list(stream.sse_events())
    else:
        async with deltastream.AsyncClient(base_url=replay_url) as aclient:
            astream = await aclient.chat.completions.create(
                model=recording, messages=[], stream=True
            )
            events = [e async for e in astream.sse_events()]
    assert all(isinstance(e, deltastream.sse.ServerSentEvent) for e in events)
    assert events[0].event == "message"
    assert events[0].json()["object"] == "chat.completion.chunk"
    assert events[-1].event == "error"
    assert "tool_use_failed" in events[-1].data
