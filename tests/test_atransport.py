"""AsyncHTTP11Transport through ``httpx2.AsyncClient``, against the raw-socket servers of
tests/_raw_server.py (threads, so they answer whatever the event loop is doing): the
same matrix as tests/test_transport.py, plus what only an event loop has: cancelled
tasks, many tasks sharing a capped pool, and a transport that outlives its loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import socket
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest

import deltastream
from deltastream.engine._deadlines import shut_down
from deltastream.engine._http import aiter_body
from deltastream.transport import RESEND_STALE_EXTENSION
from deltastream.transport._async import AsyncHTTP11Transport
from deltastream.transport._common import WHOLE_UNDER, NetworkStream

from ._raw_server import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    RawServer,
    Reply,
    Seen,
    Serve,
    Step,
    chunk,
    held_or_free,
    ok,
    open_body,
    response,
    wait_until,
)

T = TypeVar("T")

GUARD = 8.0  # the longest a test awaits a task of its own


# --- clients ---------------------------------------------------------------------------


def make_client(
    *,
    limits: httpx2.Limits | None = None,
    timeout: float | httpx2.Timeout = 3.0,
    **transport: Any,
) -> httpx2.AsyncClient:
    if limits is not None:
        transport["limits"] = limits
    return httpx2.AsyncClient(transport=AsyncHTTP11Transport(**transport), timeout=timeout)


async def streamed(client: httpx2.AsyncClient, url: str) -> tuple[httpx2.Response, list[bytes]]:
    async with client.stream("GET", url) as resp:
        return resp, [piece async for piece in resp.aiter_bytes()]


async def eventually(condition: Callable[[], bool], within: float = 3.0) -> bool:
    """``wait_until`` that lets the event loop run meanwhile."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def guarded(awaitable: Awaitable[T]) -> T:
    return await asyncio.wait_for(awaitable, GUARD)


async def text_of(client: httpx2.AsyncClient, url: str, **kwargs: Any) -> str:
    return (await client.get(url, **kwargs)).text


# --- bodies ---------------------------------------------------------------------------


async def test_a_chunked_stream_arrives_piece_by_piece_and_complete(serve: Serve) -> None:
    go_on = threading.Event()
    words = [b"alpha ", b"beta ", b"gamma ", b"delta"]
    steps: list[Step] = [CHUNKED_HEAD + chunk(words[0]), go_on]
    for word in words[1:]:
        steps += [0.01, chunk(word)]
    server = serve(lambda seen: Reply([*steps, LAST_CHUNK]))
    async with make_client() as client, client.stream("GET", server.url + "/stream") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/plain"
        pieces = resp.aiter_bytes()
        # The first piece comes before the server sends the rest: it is streamed.
        assert await guarded(anext(pieces)) == words[0]
        go_on.set()
        rest = [piece async for piece in pieces]
    assert b"".join(rest) == b"".join(words[1:])
    assert server.seen[0].target == "/stream"


async def test_one_read_of_many_small_chunks_is_one_piece(serve: Serve) -> None:
    go_on = threading.Event()
    tokens = [b"token%d " % i for i in range(1000)]
    body = b"".join(map(chunk, tokens)) + LAST_CHUNK
    server = serve(lambda seen: Reply([CHUNKED_HEAD, go_on, body]))
    async with make_client() as client, client.stream("GET", server.url) as resp:
        go_on.set()
        await asyncio.sleep(0.1)  # all of it has been read from the socket by now
        pieces = [piece async for piece in resp.aiter_bytes()]
    assert b"".join(pieces) == b"".join(tokens)
    assert len(body) < 64 * 1024
    assert len(pieces) <= 2  # one per read, not one per chunk


async def test_a_stream_that_came_with_its_head_gives_its_first_event_alone(
    serve: Serve,
) -> None:
    # Its rest, after the first event, is more than what goes with the first.
    events = [b"data: %d %s\n\n" % (i, b"x" * (WHOLE_UNDER // 3)) for i in range(5)]
    server = serve(lambda seen: Reply([CHUNKED_HEAD + b"".join(map(chunk, events)) + LAST_CHUNK]))
    async with make_client() as client:
        for _ in range(2):
            async with client.stream("GET", server.url) as resp:
                pieces = [piece async for piece in resp.aiter_raw()]
            assert pieces == [events[0], b"".join(events[1:])]
        async with client.stream("GET", server.url) as resp:  # closed unread
            assert resp.status_code == 200
    assert server.connections_of() == [0, 0, 0]


async def test_a_short_stream_that_came_with_its_head_comes_up_whole(serve: Serve) -> None:
    events = [b"data: %d\n\n" % i for i in range(5)]
    server = serve(lambda seen: Reply([CHUNKED_HEAD + b"".join(map(chunk, events)) + LAST_CHUNK]))
    async with make_client() as client:
        for _ in range(2):
            async with client.stream("GET", server.url) as resp:
                assert [piece async for piece in resp.aiter_raw()] == [b"".join(events)]
    assert server.connections_of() == [0, 0]


async def test_a_body_replaced_after_the_request_was_built_is_the_one_sent(
    serve: Serve,
) -> None:
    server = serve(lambda seen: ok())
    payload = b'{"model": "m", "messages": []}' * 10

    async def compress(request: httpx2.Request) -> None:
        packed = gzip.compress(request.content)
        request.stream = httpx2.ByteStream(packed)
        request.headers["Content-Length"] = str(len(packed))

    async with make_client() as client:
        client.event_hooks["request"] = [compress]
        for _ in range(2):
            assert (await client.post(server.url, content=payload)).status_code == 200
    for seen in server.seen:
        assert gzip.decompress(seen.body) == payload
    assert [seen.connection for seen in server.seen] == [0, 0]


async def test_content_length_body_in_several_writes(serve: Serve) -> None:
    payload = bytes(range(256)) * 40
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload)
    steps: list[Step] = [head]
    for start in range(0, len(payload), 3000):
        steps += [payload[start : start + 3000], 0.005]
    server = serve(lambda seen: Reply(steps))
    async with make_client() as client:
        resp, pieces = await streamed(client, server.url)
        assert b"".join(pieces) == payload
        assert resp.headers["content-length"] == str(len(payload))
        assert (await client.get(server.url)).content == payload
    assert server.connections_of() == [0, 0]


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\n\r\n", b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"],
    ids=["http/1.1", "http/1.0"],
)
async def test_a_body_until_close(serve: Serve, head: bytes) -> None:
    def handler(seen: Seen) -> Reply:
        if seen.target == "/next":
            return ok(b"next")
        return Reply([head, b"first ", 0.01, b"second"], close=True)

    server = serve(handler)
    async with make_client() as client:
        resp, pieces = await streamed(client, server.url)
        assert resp.status_code == 200
        assert b"".join(pieces) == b"first second"
        assert await text_of(client, server.url + "/next") == "next"
    assert server.connections_of() == [0, 1]


@pytest.mark.parametrize(
    ("method", "head"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("DELETE", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
        ("GET", b'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: "x"\r\n\r\n'),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ],
)
async def test_responses_without_a_body_do_not_wait_and_keep_the_connection(
    serve: Serve, method: str, head: bytes
) -> None:
    def handler(seen: Seen) -> Reply:
        return ok(b"after") if seen.target == "/after" else Reply([head])

    server = serve(handler)
    async with make_client(timeout=httpx2.Timeout(3.0, read=1.0)) as client:
        started = time.monotonic()
        resp = await client.request(method, server.url)
        assert time.monotonic() - started < 0.5
        assert resp.content == b""
        assert resp.status_code == int(head.split(b" ")[1])
        assert await text_of(client, server.url + "/after") == "after"
    assert server.connections_of() == [0, 0]


async def test_interim_responses_are_skipped(serve: Serve) -> None:
    steps: list[Step] = [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        0.05,
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
        0.05,
        response(b"final", b"X-Final: yes\r\n", b"201 Created"),
    ]
    server = serve(lambda seen: Reply(steps))
    async with make_client() as client:
        resp = await client.post(server.url, content=b"payload")
    assert resp.status_code == 201
    assert resp.headers["x-final"] == "yes"
    assert "link" not in resp.headers
    assert resp.text == "final"


async def test_an_interim_and_the_final_response_in_one_write(serve: Serve) -> None:
    """The final head is already in the buffer: it must not wait for another read."""
    both = b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"final")
    server = serve(lambda seen: Reply([both]))
    async with make_client(timeout=httpx2.Timeout(3.0, read=0.5)) as client:
        started = time.monotonic()
        resp = await client.post(server.url, content=b"payload")
        assert time.monotonic() - started < 0.4
        assert resp.text == "final"
        assert await text_of(client, server.url) == "final"
    assert server.connections_of() == [0, 0]


# --- keep-alive and new connections ---------------------------------------------------


@pytest.mark.parametrize("kind", ["content-length", "chunked-at-once", "chunked-streamed"])
async def test_keep_alive_reuses_the_connection(serve: Serve, kind: str) -> None:
    def handler(seen: Seen) -> Reply:
        if kind == "content-length":
            return ok(seen.target.encode())
        if kind == "chunked-at-once":
            return Reply([CHUNKED_HEAD + chunk(seen.target.encode()) + LAST_CHUNK])
        return Reply([CHUNKED_HEAD, 0.01, chunk(seen.target.encode()), 0.01, LAST_CHUNK])

    server = serve(handler)
    async with make_client() as client:
        assert b"".join((await streamed(client, server.url + "/one"))[1]) == b"/one"
        assert await text_of(client, server.url + "/two") == "/two"
        assert await text_of(client, server.url + "/three") == "/three"
    assert server.connections_of() == [0, 0, 0]
    assert server.connections == 1


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        (b"Connection: close\r\n", b"HTTP/1.1"),
        (b"Connection: Upgrade, Close\r\n", b"HTTP/1.1"),
        (b"", b"HTTP/1.0"),
    ],
)
async def test_a_response_that_ends_the_connection_is_not_reused(
    serve: Serve, headers: bytes, version: bytes
) -> None:
    # The server keeps the connection open: only the headers tell the client not to reuse it.
    reply = response(b"x", headers).replace(b"HTTP/1.1", version, 1)
    server = serve(lambda seen: Reply([reply]))
    async with make_client() as client:
        assert await text_of(client, server.url) == "x"
        assert await text_of(client, server.url) == "x"
    assert server.connections_of() == [0, 1]
    # ... and the client closed the first one rather than leave it open.
    assert await eventually(lambda: 0 in server.closed_by_client)


async def test_http_1_0_with_keep_alive_is_reused(serve: Serve) -> None:
    reply = response(b"x", b"Connection: keep-alive\r\n").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    server = serve(lambda seen: Reply([reply]))
    async with make_client() as client:
        await client.get(server.url)
        await client.get(server.url)
    assert server.connections_of() == [0, 0]


async def test_a_request_asking_to_close_does_not_reuse(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    async with make_client() as client:
        await client.get(server.url, headers={"Connection": "close"})
        await client.get(server.url)
        await client.get(server.url)
    assert server.connections_of() == [0, 1, 1]
    assert server.seen[0].headers["connection"] == "close"


async def one_shot() -> AsyncIterator[bytes]:
    yield b"one-"
    yield b"shot"


async def test_an_idle_connection_the_server_closed_is_replaced(serve: Serve) -> None:
    """Noticed before reuse, not by the retry: the body is a one-shot async generator,
    which a retry could not send again."""

    def handler(seen: Seen) -> Reply:
        # Keep-alive by the headers, closed right after by the server.
        return Reply([response(seen.body or b"none")], close=seen.connection == 0)

    server = serve(handler)
    async with make_client() as client:
        assert await text_of(client, server.url + "/a") == "none"
        assert await eventually(lambda: 0 in server.closed_by_server)
        await asyncio.sleep(0.05)  # the loop sees the FIN
        assert (await client.post(server.url + "/b", content=one_shot())).text == "one-shot"
    assert [(seen.connection, seen.target) for seen in server.seen] == [(0, "/a"), (1, "/b")]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_reused_connection_closed_before_the_answer_is_retried_once(
    serve: Serve, method: str
) -> None:
    """A GET always; a POST when the caller allows it (tests/test_stale_resend.py has
    the POST that is not allowed)."""

    def handler(seen: Seen) -> Reply:
        if seen.connection == 0 and seen.target == "/b":
            return Reply(close=True)  # read the request, then hang up without a word
        return ok(seen.target.encode() + seen.body)

    server = serve(handler)
    content = b"payload" if method == "POST" else None
    extensions = {RESEND_STALE_EXTENSION: True} if method == "POST" else None
    async with make_client() as client:
        assert await text_of(client, server.url + "/a") == "/a"
        request = client.build_request(
            method, server.url + "/b", content=content, extensions=extensions
        )
        resp = await client.send(request)
        assert resp.text == "/b" + (content or b"").decode()
    assert [(seen.connection, seen.target, seen.body) for seen in server.seen] == [
        (0, "/a", b""),
        (0, "/b", content or b""),
        (1, "/b", content or b""),
    ]


async def test_the_retry_of_a_reused_connection_happens_only_once(serve: Serve) -> None:
    def handler(seen: Seen) -> Reply:
        return ok() if seen.target == "/a" else Reply(close=True)

    server = serve(handler)
    async with make_client() as client:
        await client.get(server.url + "/a")
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            await client.get(server.url + "/b")
    assert [(seen.connection, seen.target) for seen in server.seen] == [
        (0, "/a"),
        (0, "/b"),
        (1, "/b"),
    ]


class Parts:
    """An async iterable body that is not a generator."""

    def __init__(self, *parts: bytes) -> None:
        self.parts = parts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part


@pytest.mark.parametrize("kind", ["async-generator", "async-iterable"])
async def test_a_body_that_cannot_be_sent_again_is_not_retried(serve: Serve, kind: str) -> None:
    """The reused connection dies after the request went out: the body is gone, so the
    client gives up with a transport error instead of sending something else."""

    def handler(seen: Seen) -> Reply:
        if seen.connection == 0 and seen.method == "POST":
            return Reply(close=True)
        return ok()

    async def generator() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    server = serve(handler)
    async with make_client() as client:
        await client.get(server.url)
        content = generator() if kind == "async-generator" else Parts(b"hello ", b"world")
        with pytest.raises(httpx2.TransportError):
            await client.post(server.url, content=content)
        assert await text_of(client, server.url) == "ok"  # the pool is fine
    posts = [(seen.connection, seen.body) for seen in server.seen if seen.method == "POST"]
    assert posts == [(0, b"hello world")]


async def test_a_new_connection_closed_without_an_answer_is_an_error(serve: Serve) -> None:
    server = serve(lambda seen: Reply(close=True))
    async with make_client() as client:
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            await client.get(server.url)
    assert server.connections == 1  # not retried: the connection was not a reused one
    assert len(server.seen) == 1


@pytest.mark.parametrize("iterator", ["left", "held"])
async def test_a_response_closed_early_does_not_leave_its_connection_for_reuse(
    serve: Serve, iterator: str
) -> None:
    """Leaving the ``async for`` does not close the body's generator (the event loop
    does, later); holding the iterator leaves the work to ``response.aclose()``."""

    def handler(seen: Seen) -> Reply:
        if seen.target == "/long":
            return Reply([CHUNKED_HEAD + chunk(b"first")])  # and the rest never comes
        return ok(b"short")

    server = serve(handler)
    async with make_client() as client:
        async with client.stream("GET", server.url + "/long") as resp:
            if iterator == "left":
                async for piece in resp.aiter_bytes():
                    assert piece == b"first"
                    break
            else:
                pieces = resp.aiter_bytes()
                assert await guarded(anext(pieces)) == b"first"
        assert await eventually(lambda: 0 in server.closed_by_client)
        assert await text_of(client, server.url + "/short") == "short"
    assert server.connections_of() == [0, 1]


async def test_bytes_after_the_body_spoil_the_connection(serve: Serve) -> None:
    go_on = threading.Event()

    def handler(seen: Seen) -> Reply:
        if seen.target == "/junk":
            return Reply([CHUNKED_HEAD, go_on, chunk(b"all") + LAST_CHUNK + b"JUNK"])
        if seen.target == "/junk-at-once":
            return Reply([response(b"all") + b"JUNK"])
        return ok()

    server = serve(handler)
    async with make_client() as client:
        async with client.stream("GET", server.url + "/junk") as resp:
            go_on.set()
            assert b"".join([piece async for piece in resp.aiter_bytes()]) == b"all"
        assert await text_of(client, server.url + "/junk-at-once") == "all"
        await client.get(server.url)
    assert server.connections_of() == [0, 1, 2]


async def test_bytes_after_the_body_spoil_the_connection_also_when_closed_at_the_end(
    serve: Serve,
) -> None:
    go_on = threading.Event()

    def handler(seen: Seen) -> Reply:
        if seen.target == "/junk":
            return Reply([CHUNKED_HEAD, go_on, chunk(b"all") + LAST_CHUNK + b"JUNK"])
        return ok()

    server = serve(handler)
    async with make_client() as client:
        async with client.stream("GET", server.url + "/junk") as resp:
            go_on.set()
            await asyncio.sleep(0.05)  # the last chunk and the junk are in one read
            pieces = resp.aiter_bytes()  # held, so aclose() is what ends the body
            assert await guarded(anext(pieces)) == b"all"
        await client.get(server.url)
        await pieces.aclose()
    assert server.connections_of() == [0, 1]


async def test_a_large_body_read_slowly_arrives_intact(serve: Serve) -> None:
    """More than the transport buffers before it stops reading from the socket."""
    payload = bytes(range(251)) * (4 * 1024 * 1024 // 251)
    server = serve(lambda seen: ok(payload))
    async with make_client() as client:
        async with client.stream("GET", server.url) as resp:
            await asyncio.sleep(0.1)  # the server has sent what the socket buffers take
            received = bytearray()
            async for piece in resp.aiter_bytes():
                received += piece
                await asyncio.sleep(0)
        assert received == payload
        assert (await client.get(server.url + "/again")).content == payload
    assert server.connections_of() == [0, 0]


async def test_limits_without_keepalive_never_reuse(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    async with make_client(limits=httpx2.Limits(max_keepalive_connections=0)) as client:
        for _ in range(3):
            assert (await client.get(server.url)).status_code == 200
    assert server.connections_of() == [0, 1, 2]
    assert await eventually(lambda: server.closed_by_client == {0, 1, 2})


async def test_an_expired_idle_connection_is_not_reused(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    async with make_client(limits=httpx2.Limits(keepalive_expiry=0.05)) as client:
        await client.get(server.url)
        await client.get(server.url)
        await asyncio.sleep(0.15)
        await client.get(server.url)
    assert server.connections_of() == [0, 0, 1]


async def test_closing_the_transport_closes_idle_connections(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    transport = AsyncHTTP11Transport()
    async with httpx2.AsyncClient(transport=transport, timeout=3.0) as client:
        await client.get(server.url)
        await client.get(server.url)
        assert server.closed_by_client == set()
        await transport.aclose()
        assert await eventually(lambda: 0 in server.closed_by_client)
        assert (await client.get(server.url)).status_code == 200
    assert server.connections_of() == [0, 0, 1]
    assert await eventually(lambda: server.closed_by_client == {0, 1})


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps",
    [
        [CHUNKED_HEAD + chunk(b"hello") + chunk(b" world") + b"5\r\nab"],
        [CHUNKED_HEAD + chunk(b"hello"), 0.02, chunk(b" world") + b"5\r\nab"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello", 0.02, b" worldab"],
    ],
    ids=["chunked-one-write", "chunked-two-writes", "content-length"],
)
async def test_a_truncated_body_raises_after_what_came(serve: Serve, steps: list[Step]) -> None:
    server = serve(lambda seen: Reply(steps, close=True))
    got: list[bytes] = []

    async def read_all(resp: httpx2.Response) -> None:
        async for piece in resp.aiter_bytes():
            got.append(piece)

    async with make_client() as client, client.stream("GET", server.url) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx2.RemoteProtocolError, match="before the end"):
            await read_all(resp)
    assert b"".join(got) == b"hello worldab"
    assert got  # something was handed over before the error


async def test_read_timeout_waiting_for_the_response(serve: Serve) -> None:
    server = serve(lambda seen: Reply())  # reads the request, never answers
    async with make_client(timeout=httpx2.Timeout(5.0, read=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            await client.get(server.url)
        assert 0.15 < time.monotonic() - started < 2.0
    assert len(server.seen) == 1  # the request did arrive
    assert await eventually(lambda: 0 in server.closed_by_client)


async def test_read_timeout_in_the_body(serve: Serve) -> None:
    server = serve(lambda seen: Reply([CHUNKED_HEAD + chunk(b"some")]))
    async with make_client(timeout=httpx2.Timeout(5.0, read=0.2)) as client:
        async with client.stream("GET", server.url) as resp:
            pieces = resp.aiter_bytes()
            assert await guarded(anext(pieces)) == b"some"
            started = time.monotonic()
            with pytest.raises(httpx2.ReadTimeout):
                await guarded(anext(pieces))
            assert 0.15 < time.monotonic() - started < 2.0
        assert await eventually(lambda: 0 in server.closed_by_client)


async def test_write_timeout() -> None:
    """A listener that never accepts: the kernel takes the connection and some bytes,
    then sending blocks."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        async def endless() -> AsyncIterator[bytes]:
            for _ in range(1024):  # 64 MiB at most
                yield b"x" * 65536

        small_buffer = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)]
        timeout = httpx2.Timeout(5.0, write=0.2)
        async with make_client(timeout=timeout, socket_options=small_buffer) as client:
            started = time.monotonic()
            with pytest.raises(httpx2.WriteTimeout):
                await client.post(f"http://127.0.0.1:{port}/", content=endless())
            assert time.monotonic() - started < 3.0


async def test_connect_refused() -> None:
    # Bound but not listening: connecting to it is refused.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        limits = httpx2.Limits(max_connections=1)
        async with make_client(limits=limits, timeout=httpx2.Timeout(2.0, pool=0.2)) as client:
            for _ in range(2):  # a failed connect gives its pool slot back
                with pytest.raises(httpx2.ConnectError):
                    await client.get(f"http://127.0.0.1:{port}/")


async def test_connect_timeout() -> None:
    """A listener whose accept queue is full: Linux drops further SYNs."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        address = listener.getsockname()
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(address)
            await asyncio.sleep(0.05)
            try:
                socket.create_connection(address, 0.2).close()
            except TimeoutError:
                pass
            else:
                pytest.skip("this kernel does not drop connections over the backlog")
            limits = httpx2.Limits(max_connections=1)
            timeout = httpx2.Timeout(5.0, connect=0.2, pool=0.2)
            async with make_client(limits=limits, timeout=timeout) as client:
                for _ in range(2):  # a timed-out connect gives its pool slot back
                    started = time.monotonic()
                    with pytest.raises(httpx2.ConnectTimeout):
                        await client.get(f"http://{address[0]}:{address[1]}/")
                    assert time.monotonic() - started < 2.0
        finally:
            for filler in fillers:
                filler.close()


async def test_a_huge_response_head_is_refused(serve: Serve) -> None:
    endless_head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 1_000_000
    server = serve(lambda seen: Reply([endless_head]))
    async with make_client() as client:
        started = time.monotonic()
        with pytest.raises(httpx2.RemoteProtocolError, match="longer than"):
            await client.get(server.url)
        assert time.monotonic() - started < 2.0


async def test_an_invalid_status_line_is_a_protocol_error(serve: Serve) -> None:
    server = serve(lambda seen: Reply([b"HTTP/2 200 OK\r\n\r\n"]))
    async with make_client() as client:
        with pytest.raises(httpx2.RemoteProtocolError, match="status"):
            await client.get(server.url)


async def test_an_unsupported_scheme() -> None:
    async with make_client() as client:
        with pytest.raises(httpx2.UnsupportedProtocol, match="ftp"):
            await client.get("ftp://127.0.0.1/file")
    transport = AsyncHTTP11Transport()
    with pytest.raises(httpx2.UnsupportedProtocol):
        await transport.handle_async_request(httpx2.Request("GET", "ws://127.0.0.1/"))
    await transport.aclose()


# --- the pool -------------------------------------------------------------------------


async def test_pool_timeout_while_the_only_connection_is_busy(serve: Serve) -> None:
    server = serve(held_or_free)
    async with make_client(limits=httpx2.Limits(max_connections=1)) as client:
        held = await client.send(client.build_request("GET", server.url + "/held"), stream=True)
        started = time.monotonic()
        with pytest.raises(httpx2.PoolTimeout):
            await client.get(server.url + "/next", timeout=httpx2.Timeout(5.0, pool=0.2))
        assert 0.15 < time.monotonic() - started < 2.0
        await held.aclose()
        resp = await client.get(server.url + "/next", timeout=httpx2.Timeout(5.0, pool=0.2))
        assert resp.text == "free"
    assert [seen.target for seen in server.seen] == ["/held", "/next"]
    assert server.connections == 2


async def test_a_waiting_request_gets_the_connection_when_it_is_freed(serve: Serve) -> None:
    server = serve(held_or_free)
    limits = httpx2.Limits(max_connections=1)
    async with make_client(limits=limits) as client:
        held = await client.send(client.build_request("GET", server.url + "/held"), stream=True)
        waiting = asyncio.create_task(
            text_of(client, server.url + "/next", timeout=httpx2.Timeout(5.0, pool=3.0))
        )
        await asyncio.sleep(0.2)
        assert not waiting.done()
        started = time.monotonic()
        await held.aclose()
        assert await guarded(waiting) == "free"
        assert time.monotonic() - started < 0.5
    assert [seen.target for seen in server.seen] == ["/held", "/next"]


@pytest.mark.parametrize("when", ["while-waiting", "as-the-slot-is-freed"])
async def test_a_cancelled_waiter_does_not_lose_the_slot(serve: Serve, when: str) -> None:
    """Two requests wait for the only connection; the first is cancelled, before the
    connection is freed or in the same step as it is (woken, but not run yet): the
    second one must still get it, well before its pool timeout."""
    server = serve(held_or_free)
    limits = httpx2.Limits(max_connections=1)
    timeout = httpx2.Timeout(5.0, pool=3.0)
    async with make_client(limits=limits, timeout=timeout) as client:
        held = await client.send(client.build_request("GET", server.url + "/held"), stream=True)
        first = asyncio.create_task(text_of(client, server.url + "/first"))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(text_of(client, server.url + "/second"))
        await asyncio.sleep(0.1)
        assert not first.done()
        assert not second.done()
        if when == "while-waiting":
            first.cancel()
            await asyncio.sleep(0.05)
            await held.aclose()
        else:
            await held.aclose()  # wakes the first waiter; it has not run yet
            first.cancel()
        started = time.monotonic()
        assert await guarded(second) == "free"
        assert time.monotonic() - started < 1.0
        with pytest.raises(asyncio.CancelledError):
            await guarded(first)
        # The pool still counts right: one more request gets the connection at once.
        assert await text_of(client, server.url + "/after", timeout=0.5) == "free"
    assert "/first" not in [seen.target for seen in server.seen]


async def test_a_waiter_is_not_starved_by_a_task_that_keeps_asking(serve: Serve) -> None:
    server = serve(lambda seen: Reply([0.02, response(seen.target.encode())]))
    order: list[str] = []
    limits = httpx2.Limits(max_connections=1)
    async with make_client(limits=limits, timeout=httpx2.Timeout(3.0, pool=0.3)) as client:

        async def busy() -> None:
            for i in range(20):  # about 0.4 s of requests, one after the other
                order.append(await text_of(client, server.url + f"/busy{i}"))

        async def waiter() -> None:
            await asyncio.sleep(0.01)  # busy holds the connection by now
            try:
                order.append(await text_of(client, server.url + "/waiter"))
            except httpx2.PoolTimeout:
                order.append("PoolTimeout")

        await guarded(asyncio.gather(busy(), waiter()))
    # FIFO: the waiter is next in line as soon as busy's first request is done.
    assert "/waiter" in order[:3], order


async def test_an_idle_connection_to_another_origin_is_evicted_at_the_cap(serve: Serve) -> None:
    first = serve(lambda seen: ok(b"first"))
    second = serve(lambda seen: ok(b"second"))
    limits = httpx2.Limits(max_connections=1)
    async with make_client(limits=limits, timeout=httpx2.Timeout(3.0, pool=0.5)) as client:
        assert await text_of(client, first.url) == "first"
        assert await text_of(client, second.url) == "second"  # not a PoolTimeout
        assert await eventually(lambda: 0 in first.closed_by_client)
        assert await text_of(client, second.url) == "second"
    assert second.connections_of() == [0, 0]


async def test_no_more_idle_connections_than_the_limit(serve: Serve) -> None:
    server = serve(lambda seen: Reply([0.05, response(seen.target.encode())]))
    limits = httpx2.Limits(max_connections=10, max_keepalive_connections=1)
    async with make_client(limits=limits) as client:
        texts = await guarded(
            asyncio.gather(*(text_of(client, server.url + "/a") for _ in range(3)))
        )
        assert texts == ["/a"] * 3
        assert server.connections == 3
        # Two of the three were closed when they came back, one waits for reuse.
        assert await eventually(lambda: len(server.closed_by_client) == 2)
        assert await text_of(client, server.url + "/b") == "/b"
        assert server.seen[-1].connection not in server.closed_by_client  # the kept one
    assert server.connections == 3


async def test_many_tasks_share_a_capped_pool(serve: Serve) -> None:
    server = serve(lambda seen: Reply([0.01, response(seen.target.encode())]))
    limits = httpx2.Limits(max_connections=5)
    async with make_client(limits=limits, timeout=httpx2.Timeout(5.0)) as client:
        paths = [f"/{n}" for n in range(50)]
        texts = await guarded(
            asyncio.gather(*(text_of(client, server.url + path) for path in paths))
        )
    assert texts == paths
    assert sorted(seen.target for seen in server.seen) == sorted(paths)
    assert 1 <= server.connections <= 5
    assert len(set(server.connections_of())) == server.connections


async def test_pool_cap_holds_for_streams_read_concurrently(serve: Serve) -> None:
    """Streams hold their connection until their body ends: never more than the cap
    open at once, however the tasks interleave."""

    def handler(seen: Seen) -> Reply:
        parts: list[Step] = [CHUNKED_HEAD]
        for i in range(3):
            parts += [0.005, chunk(b"%s:%d;" % (seen.target.encode(), i))]
        return Reply([*parts, LAST_CHUNK])

    server = serve(handler)
    limits = httpx2.Limits(max_connections=3)
    async with make_client(limits=limits, timeout=httpx2.Timeout(5.0)) as client:

        async def read(path: str) -> bytes:
            return b"".join((await streamed(client, server.url + path))[1])

        paths = [f"/{n}" for n in range(20)]
        bodies = await guarded(asyncio.gather(*(read(path) for path in paths)))
    for path, body in zip(paths, bodies, strict=True):
        assert body == b"%s:0;%s:1;%s:2;" % ((path.encode(),) * 3)
    assert 1 <= server.connections <= 3


@pytest.mark.parametrize("reader", ["async-with", "aiter-bytes", "deltastream"])
async def test_a_task_cancelled_while_reading_the_body_releases_the_connection(
    serve: Serve, reader: str
) -> None:
    """With ``async with`` the response is closed on the way out, and httpx2's
    ``aiter_bytes`` closes it when the iteration fails; deltastream reads the
    transport's body stream directly (``_http.aiter_body``), so there the cancelled
    read itself must give the connection up."""
    server = serve(held_or_free)
    got: list[bytes] = []
    first_piece = asyncio.Event()
    limits = httpx2.Limits(max_connections=1)
    responses: list[httpx2.Response] = []
    async with make_client(limits=limits, timeout=httpx2.Timeout(5.0, pool=1.0)) as client:

        async def read_to_the_end(resp: httpx2.Response) -> None:
            pieces = aiter_body(resp) if reader == "deltastream" else resp.aiter_bytes()
            async for piece in pieces:
                got.append(piece)
                first_piece.set()

        async def read() -> None:
            if reader == "async-with":
                async with client.stream("GET", server.url + "/held") as resp:
                    await read_to_the_end(resp)
            else:
                request = client.build_request("GET", server.url + "/held")
                responses.append(await client.send(request, stream=True))
                await read_to_the_end(responses[0])

        task = asyncio.create_task(read())
        await guarded(first_piece.wait())
        await asyncio.sleep(0.05)  # the task now awaits the next piece
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await guarded(task)
        started = time.monotonic()
        assert await eventually(lambda: 0 in server.closed_by_client, within=1.0)
        assert time.monotonic() - started < 0.5
        assert await text_of(client, server.url + "/next") == "free"  # the slot is back
        for resp in responses:
            await resp.aclose()
    assert got == [b"held"]
    assert server.connections_of() == [0, 1]


async def test_a_task_cancelled_while_waiting_for_the_head_releases_the_connection(
    serve: Serve,
) -> None:
    def handler(seen: Seen) -> Reply:
        return Reply() if seen.target == "/silent" else ok(b"free")

    server = serve(handler)
    limits = httpx2.Limits(max_connections=1)
    async with make_client(limits=limits, timeout=httpx2.Timeout(5.0, pool=1.0)) as client:
        task = asyncio.create_task(client.get(server.url + "/silent"))
        assert await eventually(lambda: len(server.seen) == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await guarded(task)
        assert await eventually(lambda: 0 in server.closed_by_client, within=1.0)
        assert await text_of(client, server.url + "/next") == "free"
    assert server.connections_of() == [0, 1]


# --- requests ---------------------------------------------------------------------------


async def test_the_request_head_as_the_server_reads_it(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    async with make_client() as client:
        await client.get(server.url + "/v1/models?limit=2&q=a%20b", headers={"X-Custom": "yes"})
    (seen,) = server.seen
    assert seen.head.startswith(b"GET /v1/models?limit=2&q=a%20b HTTP/1.1\r\n")
    assert seen.headers["host"] == f"127.0.0.1:{server.address[1]}"
    assert seen.headers["x-custom"] == "yes"


async def test_a_post_body_with_content_length_arrives_intact(serve: Serve) -> None:
    server = serve(lambda seen: ok(b"%d" % len(seen.body)))
    payload = bytes(range(256)) * 1200  # 300 KiB
    async with make_client() as client:
        resp = await client.post(server.url + "/upload", content=payload)
    assert resp.text == str(len(payload))
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.headers["content-length"] == str(len(payload))
    assert "transfer-encoding" not in seen.headers
    assert seen.body == payload


async def test_an_async_generator_body_is_sent_chunked(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    parts = [b"first,", b"", b"second,", b"x" * 300_000, b"\r\n0\r\n\r\n", b"last"]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
            await asyncio.sleep(0)

    async with make_client() as client:
        assert (await client.post(server.url, content=body())).status_code == 200
        assert (await client.get(server.url)).status_code == 200  # still in step
    post, get = server.seen
    assert post.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in post.headers
    assert post.body == b"".join(parts)
    assert get.connection == post.connection == 0


# --- the network stream, socket options, TLS -----------------------------------------


async def test_the_network_stream_has_the_socket(serve: Serve) -> None:
    server = serve(open_body)
    async with make_client() as client, client.stream("GET", server.url) as resp:
        stream = resp.extensions["network_stream"]
        assert isinstance(stream, NetworkStream)
        sock = stream.get_extra_info("socket")
        assert callable(sock.shutdown)  # what the deadline watchdog needs
        assert sock.getpeername() == server.address
        assert stream.get_extra_info("ssl_object") is None
        # the two ends' addresses, as httpcore's network streams give them
        assert stream.get_extra_info("server_addr") == server.address
        assert stream.get_extra_info("client_addr") == sock.getsockname()
        assert stream.get_extra_info("no such thing") is None
        assert resp.extensions["http_version"] == b"HTTP/1.1"
        assert resp.extensions["reason_phrase"] == b"OK"


async def test_shutting_the_socket_down_ends_a_waiting_read(serve: Serve) -> None:
    """What the deadline watchdog does from its thread: the read waiting on the loop fails."""
    server = serve(open_body)
    async with make_client() as client, client.stream("GET", server.url) as resp:
        sock = resp.extensions["network_stream"].get_extra_info("socket")
        pieces = resp.aiter_bytes()
        assert await guarded(anext(pieces)) == b"open"
        timer = threading.Timer(0.1, shut_down, (sock,))
        timer.start()
        started = time.monotonic()
        with pytest.raises(httpx2.TransportError):
            await guarded(anext(pieces))
        assert time.monotonic() - started < 1.0
        timer.join()


@pytest.mark.parametrize("enabled", [0, 1])
async def test_socket_options_are_applied(serve: Serve, enabled: int) -> None:
    server = serve(open_body)
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, enabled)]
    async with (
        make_client(socket_options=options) as client,
        client.stream("GET", server.url) as resp,
    ):
        sock = resp.extensions["network_stream"].get_extra_info("socket")
        assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is bool(enabled)


async def test_https_with_a_trusted_certificate(
    tls_server: RawServer, certificate: tuple[Path, Path]
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    async with make_client(verify=trusted) as client:
        resp, pieces = await streamed(client, tls_server.url + "/secure")
        assert b"".join(pieces) == b"/secure"
        sock = resp.extensions["network_stream"].get_extra_info("socket")
        assert sock.getpeername() == tls_server.address
        assert b"".join((await streamed(client, tls_server.url + "/again"))[1]) == b"/again"
    assert tls_server.connections_of() == [0, 0]


async def test_https_network_stream_has_the_ssl_object(
    tls_server: RawServer, certificate: tuple[Path, Path]
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    async with make_client(verify=trusted) as client:
        resp, _ = await streamed(client, tls_server.url + "/secure")
        ssl_object = resp.extensions["network_stream"].get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket)
        assert ssl_object.version() is not None


async def test_https_with_an_untrusted_certificate_is_a_connect_error(
    tls_server: RawServer,
) -> None:
    async with make_client() as client:
        with pytest.raises(httpx2.ConnectError, match="CERTIFICATE"):
            await client.get(tls_server.url)
    assert tls_server.seen == []


async def test_https_without_verification(tls_server: RawServer) -> None:
    async with make_client(verify=False) as client:
        assert await text_of(client, tls_server.url + "/unverified") == "/unverified"
        assert await text_of(client, tls_server.url + "/again") == "/again"
    assert tls_server.connections_of() == [0, 0]


async def test_https_to_a_plain_http_server_is_a_connect_error(serve: Serve) -> None:
    server = serve(lambda seen: ok(), greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n")
    url = server.url.replace("http://", "https://")
    async with make_client(verify=False) as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(url)


# --- one transport, several event loops ------------------------------------------------


def test_one_transport_from_two_successive_event_loops(serve: Serve) -> None:
    """Each asyncio.run gets a pool of its own (the first loop's connections and
    futures cannot be used from the second); closing the transport at the end of a run
    releases its idle connections. One connection for three requests at once: the
    waiters wait on futures of the running loop."""
    server = serve(lambda seen: Reply([0.01, response(seen.target.encode())]))
    transport = AsyncHTTP11Transport(limits=httpx2.Limits(max_connections=1))
    client = httpx2.AsyncClient(transport=transport, timeout=3.0)

    async def run(name: str, last: bool) -> list[str]:
        urls = [f"{server.url}/{name}{i}" for i in range(3)]
        texts = await guarded(asyncio.gather(*(text_of(client, url) for url in urls)))
        await (client.aclose() if last else transport.aclose())
        return texts

    assert asyncio.run(run("a", last=False)) == ["/a0", "/a1", "/a2"]
    assert asyncio.run(run("b", last=True)) == ["/b0", "/b1", "/b2"]
    assert server.connections_of() == [0, 0, 0, 1, 1, 1]
    assert wait_until(lambda: server.closed_by_client == {0, 1})


def collect_quietly() -> None:
    """Collect what a failed test left behind without its ResourceWarnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_a_new_event_loop_closes_the_old_loops_idle_connections(serve: Serve) -> None:
    server = serve(lambda seen: ok(seen.target.encode()))
    client = httpx2.AsyncClient(transport=AsyncHTTP11Transport(), timeout=3.0)

    async def first() -> None:
        await client.get(server.url + "/a")  # leaves its connection idle in the pool

    async def second() -> None:
        await client.get(server.url + "/b")
        await client.aclose()

    try:
        gc.disable()  # the connection is closed by the transport or not at all
        asyncio.run(first())
        asyncio.run(second())
        assert server.connections_of() == [0, 1]
        closed = wait_until(lambda: server.closed_by_client == {0, 1}, within=0.5)
        assert closed, f"closed by the client: {server.closed_by_client}"
    finally:
        gc.enable()
        collect_quietly()


def test_closing_the_transport_after_its_event_loop_ended(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    transport = AsyncHTTP11Transport()

    async def use(transport: AsyncHTTP11Transport) -> None:
        async with httpx2.AsyncClient(transport=transport, timeout=3.0) as client:
            await client.get(server.url)
            await client.get(server.url)
            # Leaving the block would close the transport in this loop: take it away.
            client._transport = AsyncHTTP11Transport()

    asyncio.run(use(transport))
    error = None
    try:
        asyncio.run(transport.aclose())  # e.g. at exit, the first loop long gone
    except RuntimeError as exc:
        error = repr(exc)  # not the exception: its frames would keep the connection
    closed = wait_until(lambda: 0 in server.closed_by_client, within=0.5)
    del transport
    collect_quietly()
    assert error is None
    assert closed


# --- the real local server, through deltastream ---------------------------------------


@pytest.mark.parametrize("http_client", ["default", "explicit"])
async def test_a_chat_stream_from_the_local_server(server_url: str, http_client: str) -> None:
    """Two streams, each read to the end, over one connection of this transport."""
    messages = [{"role": "user", "content": "Write a story about a robot."}]
    sockets: list[Any] = []
    transport = AsyncHTTP11Transport()
    async with contextlib.AsyncExitStack() as stack:
        http = None
        if http_client == "explicit":
            http = await stack.enter_async_context(httpx2.AsyncClient(transport=transport))
        client = await stack.enter_async_context(
            deltastream.AsyncClient(base_url=server_url, api_key="x", http_client=http)
        )
        if http is None:  # the client's own: it must be this transport too
            transport = client._http._transport  # type: ignore[assignment]
            assert isinstance(transport, AsyncHTTP11Transport)
        for _ in range(2):
            stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
            network_stream = stream.response.extensions["network_stream"]
            assert isinstance(network_stream, NetworkStream)
            sockets.append(network_stream.get_extra_info("socket"))
            async with stream:
                text = "".join(
                    [part.choices[0].delta.content or "" async for part in stream if part.choices]
                )
            assert "robot" in text.lower()
            final = stream.current_snapshot
            assert final.choices[0].message.content == text
            assert final.choices[0].finish_reason == "stop"
        assert sockets[0] is sockets[1]  # the second stream reused the first one's connection
        # It belongs to this transport: closing the transport closes it.
        assert sockets[0].fileno() >= 0
        await transport.aclose()
        assert await eventually(lambda: sockets[0].fileno() == -1, within=1.0)


async def test_closing_the_client_ends_a_body_being_read(serve: Serve) -> None:
    go_on = threading.Event()
    server = serve(lambda seen: Reply([CHUNKED_HEAD + chunk(b"first"), go_on, chunk(b"more")]))
    client = make_client()
    async with client.stream("GET", server.url) as resp:
        pieces = resp.aiter_bytes()
        assert await anext(pieces) == b"first"
        await client.aclose()
        with pytest.raises(httpx2.ReadError, match="client was closed"):
            await anext(pieces)
    go_on.set()
    assert await eventually(lambda: 0 in server.closed_by_client)


async def test_closing_the_client_wakes_a_task_waiting_for_the_body(serve: Serve) -> None:
    go_on = threading.Event()
    server = serve(lambda seen: Reply([CHUNKED_HEAD + chunk(b"first"), go_on]))
    client = make_client(timeout=30.0)
    async with client.stream("GET", server.url) as resp:
        pieces = resp.aiter_bytes()
        assert await anext(pieces) == b"first"
        waiting = asyncio.ensure_future(anext(pieces))
        await asyncio.sleep(0.1)
        await client.aclose()
        with pytest.raises(httpx2.ReadError, match="client was closed"):
            await asyncio.wait_for(waiting, 2.0)
    go_on.set()


def test_a_client_used_from_another_event_loop_leaves_the_first_loops_streams_alone(
    serve: Serve,
) -> None:
    """The pool is per event loop; a request from a second one replaces it, and only
    the first loop's idle connections go: ending its streams from another thread is
    not safe (on uvloop the reader would never wake)."""
    go_on = threading.Event()
    streaming = serve(
        lambda seen: Reply([CHUNKED_HEAD + chunk(b"first"), go_on, chunk(b"more"), LAST_CHUNK])
    )
    answering = serve(lambda seen: ok())
    client = make_client()
    read: dict[str, object] = {}
    started = threading.Event()

    async def first_loop() -> None:
        async with client.stream("GET", streaming.url) as resp:
            body = resp.aiter_bytes()
            pieces = [await anext(body)]
            started.set()
            pieces += [piece async for piece in body]
        read["pieces"] = b"".join(pieces)

    def run_first() -> None:
        try:
            asyncio.run(asyncio.wait_for(first_loop(), 5.0))
        except BaseException as exc:  # checked below
            read["error"] = exc

    thread = threading.Thread(target=run_first)
    thread.start()
    assert started.wait(5.0)

    async def second_loop() -> int:
        return (await client.get(answering.url)).status_code

    assert asyncio.run(second_loop()) == 200
    go_on.set()
    thread.join(6.0)
    asyncio.run(client.aclose())
    assert read == {"pieces": b"firstmore"}
