"""A stream only ever acts on the connection while it holds it, and the transports give
connections back (or close them) on every path. Against the real local server."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import openai
import pytest

import deltastream
from tests.test_live import STORY, wait_for_open_connections


def test_a_late_cancel_leaves_the_reused_connection_alone(private_url: str) -> None:
    with deltastream.Client(base_url=private_url) as client:
        first = client.chat.completions.create(model="m", messages=STORY, stream=True)
        text = "".join(first.text_deltas())
        second = client.chat.completions.create(model="m", messages=STORY, stream=True)
        first.cancel()  # long finished: its connection now carries `second`
        assert "".join(second.text_deltas()) == text
        assert second.response.extensions["network_stream"].get_extra_info("socket") is (
            first.response.extensions["network_stream"].get_extra_info("socket")
        )


async def test_a_late_cancel_leaves_the_reused_connection_alone_async(private_url: str) -> None:
    async with deltastream.AsyncClient(base_url=private_url) as client:
        first = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        text = "".join([delta async for delta in first.text_deltas()])
        second = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        first.cancel()
        assert "".join([delta async for delta in second.text_deltas()]) == text


def test_a_body_read_by_an_event_hook_still_streams(private_url: str) -> None:
    def read_it(response: httpx2.Response) -> None:
        response.read()

    http = httpx2.Client(
        transport=deltastream.HTTP11Transport(), event_hooks={"response": [read_it]}
    )
    with deltastream.Client(base_url=private_url, http_client=http) as client:
        stream = client.chat.completions.create(model="m", messages=STORY, stream=True)
        completion = stream.get_final_completion()
    http.close()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"


def test_a_failing_socket_option_closes_the_socket(private_url: str) -> None:
    bad = [(socket.SOL_SOCKET, 987654, 1)]  # no such option: setsockopt raises
    transport = deltastream.HTTP11Transport(socket_options=bad)
    with httpx2.Client(transport=transport) as http, pytest.raises(httpx2.ConnectError):
        http.get(private_url.removesuffix("/v1") + "/health")
    gc.collect()  # an unclosed socket would warn here, and warnings are errors
    assert wait_for_open_connections(private_url, 0) == 0


async def test_a_failing_socket_option_closes_the_socket_async(private_url: str) -> None:
    bad = [(socket.SOL_SOCKET, 987654, 1)]
    transport = deltastream.AsyncHTTP11Transport(socket_options=bad)
    async with httpx2.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(private_url.removesuffix("/v1") + "/health")
    gc.collect()
    assert wait_for_open_connections(private_url, 0) == 0


@pytest.mark.parametrize("face", [deltastream.Client, deltastream.OpenAI])
def test_a_stream_dropped_unread_closes_its_socket_quietly(private_url: str, face: Any) -> None:
    """Its connection goes with it (the pool holds connections weakly), socket closed,
    with no ResourceWarning for an unclosed socket (openai's pool keeps such a
    connection until the client closes, and never warns either)."""
    client = face(base_url=private_url, api_key="x")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        stream = client.chat.completions.create(model="m", messages=STORY, stream=True)
        del stream
        gc.collect()
    assert wait_for_open_connections(private_url, 0) == 0
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
    again = client.chat.completions.create(model="m", messages=STORY, stream=True)
    assert sum(1 for _ in again) > 1  # and the client goes on
    client.close()


STALL = {"X-Deltastream-Fault": "stall-after=2:30"}  # then silent for 30 s


def test_closing_the_client_ends_its_open_stream_and_closes_the_connection(
    private_url: str,
) -> None:
    """As with openai (httpx2's pool closes the connections in use too): a stream read
    after its client closed raises, and its connection does not go back to the pool."""
    client = deltastream.Client(base_url=private_url)
    stream = client.chat.completions.create(
        model="m", messages=STORY, stream=True, extra_headers=STALL
    )
    next(iter(stream))
    client.close()
    with pytest.raises(deltastream.native.APIConnectionError, match="client was closed"):
        stream.until_done()
    assert stream.events_received >= 1  # what arrived before is kept
    # Within a second: the server itself drops idle keep-alive connections after five.
    assert wait_for_open_connections(private_url, 0, within=1.0) == 0


async def test_closing_the_client_ends_its_open_stream_and_closes_the_connection_async(
    private_url: str,
) -> None:
    client = deltastream.AsyncClient(base_url=private_url)
    stream = await client.chat.completions.create(
        model="m", messages=STORY, stream=True, extra_headers=STALL
    )
    await stream.__anext__()
    await client.close()
    with pytest.raises(deltastream.native.APIConnectionError, match="client was closed"):
        await stream.until_done()
    assert wait_for_open_connections(private_url, 0, within=1.0) == 0


def test_closing_the_drop_in_client_ends_its_open_stream_as_openais_does(
    private_url: str,
) -> None:
    client = deltastream.OpenAI(base_url=private_url, api_key="unused")
    user: Any = STORY  # openai's stubs want its TypedDicts
    stream = client.chat.completions.create(
        model="m", messages=user, stream=True, extra_headers=STALL
    )
    next(iter(stream))
    client.close()
    with pytest.raises(openai.APIConnectionError):
        list(stream)
    assert wait_for_open_connections(private_url, 0, within=1.0) == 0


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Reference counting alone: an object in a reference cycle stays until the cyclic
    collector runs, which these tests keep from running."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


SYNC_FACES: dict[str, Callable[[str], Any]] = {
    "native": lambda url: deltastream.Client(base_url=url),
    "drop-in": lambda url: deltastream.OpenAI(base_url=url, api_key="unused"),
}
ASYNC_FACES: dict[str, Callable[[str], Any]] = {
    "native": lambda url: deltastream.AsyncClient(base_url=url),
    "drop-in": lambda url: deltastream.AsyncOpenAI(base_url=url, api_key="unused"),
}


@pytest.mark.parametrize("face", SYNC_FACES)
def test_leaving_a_loop_over_a_stream_closes_its_connection_at_once(
    private_url: str, face: str, no_collector: None
) -> None:
    with SYNC_FACES[face](private_url) as client:
        stream: Any = client.chat.completions.create(model="m", messages=STORY, stream=True)
        for i, _chunk in enumerate(stream):
            if i == 2:
                break
        assert wait_for_open_connections(private_url, 1, within=1.0) == 1
        del stream  # abandoned mid-answer: its generator ends, and the body with it
        assert wait_for_open_connections(private_url, 0, within=1.0) == 0
        # The loop alone held the stream: leaving it lets go of everything.
        for i, _chunk in enumerate(
            client.chat.completions.create(model="m", messages=STORY, stream=True)
        ):
            if i == 2:
                break
        assert wait_for_open_connections(private_url, 0, within=1.0) == 0


@pytest.mark.parametrize("face", ASYNC_FACES)
async def test_leaving_a_loop_over_a_stream_closes_its_connection_at_once_async(
    private_url: str, face: str, no_collector: None
) -> None:
    async with ASYNC_FACES[face](private_url) as client:
        stream: Any = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        i = 0
        async for _chunk in stream:
            i += 1
            if i == 3:
                break
        del stream  # the loop finalizes the generator in a task of its own
        await asyncio.sleep(0.05)  # (wait_for_open_connections blocks the loop)
        assert wait_for_open_connections(private_url, 0, within=1.0) == 0


async def test_an_abandoned_stream_on_httpx2s_own_transport_is_closed_in_a_loop_task(
    private_url: str, no_collector: None
) -> None:
    # A response whose close must wait is closed in a task of the running loop, as the
    # loop closes an async generator left unfinished: here one never iterated at all.
    http = httpx2.AsyncClient()
    async with deltastream.AsyncClient(base_url=private_url, http_client=http) as client:
        stream: Any = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        response = stream.response
        del stream
        for _ in range(100):
            if response.is_closed:
                break
            await asyncio.sleep(0.01)
        assert response.is_closed
    await http.aclose()


def test_a_stream_iterated_after_its_object_is_gone_reads_to_the_end(private_url: str) -> None:
    """The generator a loop holds works on when nothing else holds its stream."""
    with deltastream.Client(base_url=private_url) as client:
        reference = "".join(
            client.chat.completions.create(model="m", messages=STORY, stream=True).text_deltas()
        )
        chunks = iter(client.chat.completions.create(model="m", messages=STORY, stream=True))
        gc.collect()
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reference


@pytest.mark.parametrize("face", SYNC_FACES)
def test_a_finished_stream_leaves_nothing_behind_in_the_watchdog(
    private_url: str, face: str, no_collector: None
) -> None:
    """The watchdog's heap keeps a finished stream's entry until it comes due (minutes
    away) or the heap is compacted; the entry must not keep the request and body state
    alive with it."""
    with SYNC_FACES[face](private_url) as client:
        stream: Any = client.chat.completions.create(model="m", messages=STORY, stream=True)
        stream.until_done()
        request = weakref.ref(stream.response.request)
        stream.close()
        del stream
        assert request() is None


@pytest.mark.parametrize("face", ASYNC_FACES)
async def test_a_finished_stream_leaves_nothing_behind_in_the_watchdog_async(
    private_url: str, face: str, no_collector: None
) -> None:
    async with ASYNC_FACES[face](private_url) as client:
        stream: Any = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        await stream.until_done()
        request = weakref.ref(stream.response.request)
        await stream.close()
        del stream
        assert request() is None
