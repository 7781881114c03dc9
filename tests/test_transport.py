"""HTTP11Transport through ``httpx2.Client``, against raw-socket servers scripted here
(tests/_raw_server.py): each reply is the exact bytes to write, so framing, keep-alive and
failures are ours to choose, and the server records which connection carried which
request."""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deltastream
from deltastream.transport import BODY_EXTENSION
from deltastream.transport._common import WHOLE_UNDER, NetworkStream, header, make_response
from deltastream.transport._h1 import ResponseHead
from deltastream.transport._sync import HTTP11Transport

from ._raw_server import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    RawServer,
    Reply,
    Seen,
    Serve,
    Step,
    chunk,
    held_or_echo,
    held_or_free,
    ok,
    open_body,
    raw_servers,
    response,
    wait_until,
)

# --- clients ---------------------------------------------------------------------------


def make_client(
    *,
    limits: httpx2.Limits | None = None,
    timeout: float | httpx2.Timeout = 3.0,
    **transport: Any,
) -> httpx2.Client:
    if limits is not None:
        transport["limits"] = limits
    return httpx2.Client(transport=HTTP11Transport(**transport), timeout=timeout)


def streamed(client: httpx2.Client, url: str) -> tuple[httpx2.Response, list[bytes]]:
    with client.stream("GET", url) as resp:
        return resp, list(resp.iter_bytes())


# --- bodies ---------------------------------------------------------------------------


def test_a_chunked_stream_arrives_piece_by_piece_and_complete(serve: Serve) -> None:
    go_on = threading.Event()
    words = [b"alpha ", b"beta ", b"gamma ", b"delta"]
    steps: list[Step] = [CHUNKED_HEAD + chunk(words[0]), go_on]
    for word in words[1:]:
        steps += [0.01, chunk(word)]
    server = serve(lambda seen: Reply([*steps, LAST_CHUNK]))
    with make_client() as client, client.stream("GET", server.url + "/stream") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/plain"
        pieces = resp.iter_bytes()
        # The first piece comes before the server sends the rest: it is streamed.
        assert next(pieces) == words[0]
        go_on.set()
        rest = list(pieces)
    assert b"".join(rest) == b"".join(words[1:])
    assert server.seen[0].target == "/stream"


def test_one_read_of_many_small_chunks_is_one_piece(serve: Serve) -> None:
    go_on = threading.Event()
    tokens = [b"token%d " % i for i in range(1000)]
    body = b"".join(map(chunk, tokens)) + LAST_CHUNK
    server = serve(lambda seen: Reply([CHUNKED_HEAD, go_on, body]))
    with make_client() as client, client.stream("GET", server.url) as resp:
        go_on.set()
        time.sleep(0.1)  # all of it is in the socket buffer before the first read
        pieces = list(resp.iter_bytes())
    assert b"".join(pieces) == b"".join(tokens)
    assert len(body) < 64 * 1024
    assert len(pieces) <= 2  # one per read, not one per chunk


EVENTS = [b"data: %d\n\n" % i for i in range(5)]


# Events whose rest, after the first, is more than what goes with the first.
LONG_EVENTS = [b"data: %d %s\n\n" % (i, b"x" * (WHOLE_UNDER // 3)) for i in range(5)]


def test_a_stream_that_came_with_its_head_gives_its_first_event_alone(serve: Serve) -> None:
    # One write, so one read holds the head and the whole body: the first event comes
    # up before the rest is unframed, and the rest in one piece.
    body = b"".join(map(chunk, LONG_EVENTS)) + LAST_CHUNK
    server = serve(lambda seen: Reply([CHUNKED_HEAD + body]))
    with make_client() as client:
        for _ in range(2):
            with client.stream("GET", server.url) as resp:
                assert list(resp.iter_raw()) == [LONG_EVENTS[0], b"".join(LONG_EVENTS[1:])]
    assert server.connections_of() == [0, 0]


def test_a_short_stream_that_came_with_its_head_comes_up_whole(serve: Serve) -> None:
    # Its rest is shorter than a pass of its own would be worth: one piece.
    server = serve(lambda seen: Reply([CHUNKED_HEAD + b"".join(map(chunk, EVENTS)) + LAST_CHUNK]))
    with make_client() as client:
        for _ in range(2):
            with client.stream("GET", server.url) as resp:
                assert list(resp.iter_raw()) == [b"".join(EVENTS)]
    assert server.connections_of() == [0, 0]


def test_a_response_that_came_whole_with_its_head_and_is_closed_unread_is_reused(
    serve: Serve,
) -> None:
    server = serve(lambda seen: Reply([CHUNKED_HEAD + b"".join(map(chunk, EVENTS)) + LAST_CHUNK]))
    with make_client() as client:
        for _ in range(3):
            with client.stream("GET", server.url) as resp:
                assert resp.status_code == 200
    assert server.connections_of() == [0, 0, 0]


def test_bytes_after_a_body_that_came_with_its_head_end_the_connection(serve: Serve) -> None:
    # The body ends where an event would: what follows it is not a response.
    body = b"data: 1\n\n"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    server = serve(lambda seen: Reply([head + body + b"junk"]))
    with make_client() as client:
        for _ in range(2):
            with client.stream("GET", server.url) as resp:
                assert resp.read() == body
    assert server.connections_of() == [0, 1]


@st.composite
def streams_sent_with_their_heads(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    """(body, what follows the response, the writes): a chunked event stream whose
    first write holds the head and some of the body, cut anywhere after it but in
    its last chunk."""
    events = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=8))
    body = b"".join(b"data: " + event.replace(b"\n", b" ") + b"\n\n" for event in events)
    per_chunk = draw(st.integers(1, 50))
    message = b"".join(chunk(body[i : i + per_chunk]) for i in range(0, len(body), per_chunk))
    # Cut before the last chunk: bytes after the body come in its write, so the client
    # sees them before it could take the connection again.
    cuts = sorted(draw(st.lists(st.integers(1, len(message)), min_size=1, max_size=4)))
    tail = draw(st.sampled_from([b"", b"junk"]))
    message += LAST_CHUNK + tail
    bounds = [0, *cuts, len(message)]
    writes = [message[a:b] for a, b in pairwise(bounds) if b > a]
    writes[0] = CHUNKED_HEAD + writes[0]
    return body, tail, writes


@settings(max_examples=60, deadline=None)
@given(case=streams_sent_with_their_heads())
def test_any_stream_sent_with_its_head_reads_whole_and_is_reused_when_clean(
    case: tuple[bytes, bytes, list[bytes]],
) -> None:
    body, tail, writes = case
    with raw_servers() as serve:
        server = serve(lambda seen: Reply(writes))
        with make_client() as client:
            for _ in range(2):
                with client.stream("GET", server.url) as resp:
                    assert b"".join(resp.iter_raw()) == body
        # Bytes after the body end the connection; else both ran on one.
        assert server.connections_of() == ([0, 1] if tail else [0, 0])


def test_content_length_body_in_several_writes(serve: Serve) -> None:
    payload = bytes(range(256)) * 40
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload)
    steps: list[Step] = [head]
    for start in range(0, len(payload), 3000):
        steps += [payload[start : start + 3000], 0.005]
    server = serve(lambda seen: Reply(steps))
    with make_client() as client:
        resp, pieces = streamed(client, server.url)
        assert b"".join(pieces) == payload
        assert resp.headers["content-length"] == str(len(payload))
        assert client.get(server.url).status_code == 200
    assert server.connections_of() == [0, 0]


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\n\r\n", b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"],
    ids=["http/1.1", "http/1.0"],
)
def test_a_body_until_close(serve: Serve, head: bytes) -> None:
    def handler(seen: Seen) -> Reply:
        if seen.target == "/next":
            return ok(b"next")
        return Reply([head, b"first ", 0.01, b"second"], close=True)

    server = serve(handler)
    with make_client() as client:
        resp, pieces = streamed(client, server.url)
        assert resp.status_code == 200
        assert b"".join(pieces) == b"first second"
        assert client.get(server.url + "/next").text == "next"
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
def test_responses_without_a_body_do_not_wait_and_keep_the_connection(
    serve: Serve, method: str, head: bytes
) -> None:
    def handler(seen: Seen) -> Reply:
        return ok(b"after") if seen.target == "/after" else Reply([head])

    server = serve(handler)
    timeout = httpx2.Timeout(3.0, read=1.0)
    with make_client(timeout=timeout) as client:
        started = time.monotonic()
        resp = client.request(method, server.url)
        assert time.monotonic() - started < 0.5
        assert resp.content == b""
        assert resp.status_code == int(head.split(b" ")[1])
        assert client.get(server.url + "/after").text == "after"
    assert server.connections_of() == [0, 0]


def test_interim_responses_are_skipped(serve: Serve) -> None:
    steps: list[Step] = [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        0.05,
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
        0.05,
        response(b"final", b"X-Final: yes\r\n", b"201 Created"),
    ]
    server = serve(lambda seen: Reply(steps))
    with make_client() as client:
        resp = client.post(server.url, content=b"payload")
    assert resp.status_code == 201
    assert resp.headers["x-final"] == "yes"
    assert "link" not in resp.headers
    assert resp.text == "final"


def test_an_interim_and_the_final_response_in_one_write(serve: Serve) -> None:
    """The final head is already in the buffer: it must not wait for another read."""
    both = b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"final")
    server = serve(lambda seen: Reply([both]))
    with make_client(timeout=httpx2.Timeout(3.0, read=0.5)) as client:
        started = time.monotonic()
        resp = client.post(server.url, content=b"payload")
        assert time.monotonic() - started < 0.4
        assert resp.text == "final"
        assert client.get(server.url).text == "final"
    assert server.connections_of() == [0, 0]


# --- keep-alive and new connections ---------------------------------------------------


@pytest.mark.parametrize("kind", ["content-length", "chunked-at-once", "chunked-streamed"])
def test_keep_alive_reuses_the_connection(serve: Serve, kind: str) -> None:
    def handler(seen: Seen) -> Reply:
        if kind == "content-length":
            return ok(seen.target.encode())
        if kind == "chunked-at-once":
            return Reply([CHUNKED_HEAD + chunk(seen.target.encode()) + LAST_CHUNK])
        return Reply([CHUNKED_HEAD, 0.01, chunk(seen.target.encode()), 0.01, LAST_CHUNK])

    server = serve(handler)
    with make_client() as client:
        assert b"".join(streamed(client, server.url + "/one")[1]) == b"/one"
        assert client.get(server.url + "/two").text == "/two"
        assert client.get(server.url + "/three").text == "/three"
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
def test_a_response_that_ends_the_connection_is_not_reused(
    serve: Serve, headers: bytes, version: bytes
) -> None:
    # The server keeps the connection open: only the headers tell the client not to reuse it.
    reply = response(b"x", headers).replace(b"HTTP/1.1", version, 1)
    server = serve(lambda seen: Reply([reply]))
    with make_client() as client:
        assert client.get(server.url).text == "x"
        assert client.get(server.url).text == "x"
    assert server.connections_of() == [0, 1]


def test_http_1_0_with_keep_alive_is_reused(serve: Serve) -> None:
    reply = response(b"x", b"Connection: keep-alive\r\n").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    server = serve(lambda seen: Reply([reply]))
    with make_client() as client:
        client.get(server.url)
        client.get(server.url)
    assert server.connections_of() == [0, 0]


def test_a_request_asking_to_close_does_not_reuse(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    with make_client() as client:
        client.get(server.url, headers={"Connection": "close"})
        client.get(server.url)
        client.get(server.url)
    assert server.connections_of() == [0, 1, 1]
    assert server.seen[0].headers["connection"] == "close"


def test_an_idle_connection_the_server_closed_is_replaced(serve: Serve) -> None:
    """Noticed before reuse, not by the retry: the body is a one-shot generator, which
    a retry could not send again."""

    def handler(seen: Seen) -> Reply:
        # Keep-alive by the headers, closed right after by the server.
        return Reply([response(seen.body or b"none")], close=seen.connection == 0)

    def body() -> Iterator[bytes]:
        yield b"one-"
        yield b"shot"

    server = serve(handler)
    with make_client() as client:
        assert client.get(server.url + "/a").text == "none"
        assert wait_until(lambda: 0 in server.closed_by_server)
        time.sleep(0.05)  # the FIN reaches the client's socket
        assert client.post(server.url + "/b", content=body()).text == "one-shot"
    assert [(seen.connection, seen.target) for seen in server.seen] == [(0, "/a"), (1, "/b")]


def test_a_reused_connection_closed_before_the_answer_is_retried_once(serve: Serve) -> None:
    def handler(seen: Seen) -> Reply:
        if seen.connection == 0 and seen.target == "/b":
            return Reply(close=True)  # read the request, then hang up without a word
        return ok(seen.target.encode())

    server = serve(handler)
    with make_client() as client:
        assert client.get(server.url + "/a").text == "/a"
        assert client.get(server.url + "/b").text == "/b"
    assert [(seen.connection, seen.target) for seen in server.seen] == [
        (0, "/a"),
        (0, "/b"),
        (1, "/b"),
    ]


def test_the_retry_of_a_reused_connection_happens_only_once(serve: Serve) -> None:
    def handler(seen: Seen) -> Reply:
        return ok() if seen.target == "/a" else Reply(close=True)

    server = serve(handler)
    with make_client() as client:
        client.get(server.url + "/a")
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            client.get(server.url + "/b")
    assert [(seen.connection, seen.target) for seen in server.seen] == [
        (0, "/a"),
        (0, "/b"),
        (1, "/b"),
    ]


@pytest.mark.parametrize("kind", ["iterator", "generator"])
def test_a_retry_never_sends_a_different_body(serve: Serve, kind: str) -> None:
    def handler(seen: Seen) -> Reply:
        if seen.connection == 0 and seen.method == "POST":
            return Reply(close=True)
        return ok()

    def generator() -> Iterator[bytes]:
        yield b"hello "
        yield b"world"

    server = serve(handler)
    with make_client() as client:
        client.get(server.url)
        content = iter([b"hello ", b"world"]) if kind == "iterator" else generator()
        try:
            resp = client.post(server.url, content=content)
        except httpx2.TransportError:
            pass  # giving up is fine: the body cannot be sent again
        else:
            assert resp.status_code == 200
    posts = [seen.body for seen in server.seen if seen.method == "POST"]
    assert posts
    assert all(body == b"hello world" for body in posts), posts


def test_a_new_connection_closed_without_an_answer_is_an_error(serve: Serve) -> None:
    server = serve(lambda seen: Reply(close=True))
    with make_client() as client, pytest.raises(httpx2.RemoteProtocolError):
        client.get(server.url)
    assert server.connections == 1  # not retried: the connection was not a reused one
    assert len(server.seen) == 1


@pytest.mark.parametrize("iterator", ["dropped", "held"])
def test_a_response_closed_early_does_not_leave_its_connection_for_reuse(
    serve: Serve, iterator: str
) -> None:
    """Dropping the iterator closes the body generator first (GeneratorExit); holding it
    leaves the work to ``response.close()``."""

    def handler(seen: Seen) -> Reply:
        if seen.target == "/long":
            return Reply([CHUNKED_HEAD + chunk(b"first")])  # and the rest never comes
        return ok(b"short")

    server = serve(handler)
    with make_client() as client:
        with client.stream("GET", server.url + "/long") as resp:
            if iterator == "dropped":
                for piece in resp.iter_bytes():
                    assert piece == b"first"
                    break
            else:
                pieces = resp.iter_bytes()
                assert next(pieces) == b"first"
        assert wait_until(lambda: 0 in server.closed_by_client)
        assert client.get(server.url + "/short").text == "short"
    assert server.connections_of() == [0, 1]


def test_bytes_after_the_body_spoil_the_connection_also_when_closed_at_the_end(
    serve: Serve,
) -> None:
    go_on = threading.Event()

    def handler(seen: Seen) -> Reply:
        if seen.target == "/junk":
            return Reply([CHUNKED_HEAD, go_on, chunk(b"all") + LAST_CHUNK + b"JUNK"])
        return ok()

    server = serve(handler)
    with make_client() as client:
        with client.stream("GET", server.url + "/junk") as resp:
            go_on.set()
            pieces = resp.iter_bytes()  # held, so close() is what ends the body
            assert next(pieces) == b"all"  # the whole body, and "JUNK" after it
        client.get(server.url)
        del pieces
    assert server.connections_of() == [0, 1]


def test_bytes_after_the_body_spoil_the_connection(serve: Serve) -> None:
    go_on = threading.Event()

    def handler(seen: Seen) -> Reply:
        if seen.target == "/junk":
            return Reply([CHUNKED_HEAD, go_on, chunk(b"all") + LAST_CHUNK + b"JUNK"])
        if seen.target == "/junk-at-once":
            return Reply([response(b"all") + b"JUNK"])
        return ok()

    server = serve(handler)
    with make_client() as client:
        with client.stream("GET", server.url + "/junk") as resp:
            go_on.set()
            assert b"".join(resp.iter_bytes()) == b"all"
        assert client.get(server.url + "/junk-at-once").text == "all"
        client.get(server.url)
    assert server.connections_of() == [0, 1, 2]


def test_limits_without_keepalive_never_reuse(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    with make_client(limits=httpx2.Limits(max_keepalive_connections=0)) as client:
        for _ in range(3):
            assert client.get(server.url).status_code == 200
    assert server.connections_of() == [0, 1, 2]
    assert wait_until(lambda: server.closed_by_client == {0, 1, 2})


def test_an_expired_idle_connection_is_not_reused(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    with make_client(limits=httpx2.Limits(keepalive_expiry=0.05)) as client:
        client.get(server.url)
        client.get(server.url)
        time.sleep(0.15)
        client.get(server.url)
    assert server.connections_of() == [0, 0, 1]


def test_closing_the_transport_closes_idle_connections(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    transport = HTTP11Transport()
    with httpx2.Client(transport=transport, timeout=3.0) as client:
        client.get(server.url)
        transport.close()
        assert wait_until(lambda: 0 in server.closed_by_client)
        assert client.get(server.url).status_code == 200
    assert server.connections_of() == [0, 1]


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
def test_a_truncated_body_raises_after_what_came(serve: Serve, steps: list[Step]) -> None:
    server = serve(lambda seen: Reply(steps, close=True))
    got: list[bytes] = []

    def read_all(resp: httpx2.Response) -> None:
        for piece in resp.iter_bytes():
            got.append(piece)

    with make_client() as client, client.stream("GET", server.url) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx2.RemoteProtocolError, match="before the end"):
            read_all(resp)
    assert b"".join(got) == b"hello worldab"


def test_read_timeout_waiting_for_the_response(serve: Serve) -> None:
    server = serve(lambda seen: Reply())  # reads the request, never answers
    with make_client(timeout=httpx2.Timeout(5.0, read=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            client.get(server.url)
        assert 0.15 < time.monotonic() - started < 2.0
    assert len(server.seen) == 1  # the request did arrive


def test_read_timeout_in_the_body(serve: Serve) -> None:
    server = serve(lambda seen: Reply([CHUNKED_HEAD + chunk(b"some")]))
    with make_client(timeout=httpx2.Timeout(5.0, read=0.2)) as client:
        with client.stream("GET", server.url) as resp:
            pieces = resp.iter_bytes()
            assert next(pieces) == b"some"
            started = time.monotonic()
            with pytest.raises(httpx2.ReadTimeout):
                next(pieces)
            assert 0.15 < time.monotonic() - started < 2.0
        assert wait_until(lambda: 0 in server.closed_by_client)


def test_each_request_has_its_own_read_timeout_on_a_reused_connection(serve: Serve) -> None:
    # The socket's timeout is set only when a request's differs from the last one's:
    # after a short one, a longer one holds; after a long one, a short one bites.
    server = serve(
        lambda seen: Reply([0.4, response()] if seen.target == "/slow" else [response()])
    )
    with make_client() as client:
        short = httpx2.Timeout(5.0, read=0.2)
        assert client.get(server.url, timeout=short).status_code == 200
        assert client.get(server.url + "/slow", timeout=5.0).status_code == 200
        started = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            client.get(server.url + "/slow", timeout=short)
        assert 0.15 < time.monotonic() - started < 2.0
        # The connection that timed out is dropped; a fresh one works, with no timeout.
        assert client.get(server.url + "/slow", timeout=None).status_code == 200
    assert [seen.connection for seen in server.seen] == [0, 0, 0, 1]


def test_a_body_without_a_read_timeout_waits_past_the_heads(serve: Serve) -> None:
    # The engine lifts the body's read timeout once the head is in (its watchdog keeps
    # the deadlines). The socket may keep the head's bound; a read must outlast it.
    server = serve(
        lambda seen: Reply([CHUNKED_HEAD + chunk(b"some"), 0.5, chunk(b"more") + LAST_CHUNK])
    )
    with make_client(timeout=httpx2.Timeout(5.0, read=0.2)) as client:
        for _ in range(2):  # the second on the reused connection, its bound already set
            with client.stream("GET", server.url) as resp:
                resp.request.extensions["timeout"]["read"] = None
                assert b"".join(resp.iter_bytes()) == b"somemore"
    assert [seen.connection for seen in server.seen] == [0, 0]


def test_a_request_without_a_read_timeout_after_one_with_a_short_one(serve: Serve) -> None:
    server = serve(
        lambda seen: Reply([0.5, response()] if seen.target == "/slow" else [response()])
    )
    with make_client() as client:
        assert client.get(server.url, timeout=httpx2.Timeout(5.0, read=0.2)).status_code == 200
        assert client.get(server.url + "/slow", timeout=None).status_code == 200
        with pytest.raises(httpx2.ReadTimeout):  # and the short bound is back when asked
            client.get(server.url + "/slow", timeout=httpx2.Timeout(5.0, read=0.2))
    assert [seen.connection for seen in server.seen] == [0, 0, 0]


def test_write_timeout() -> None:
    """A listener that never accepts: the kernel takes the connection and some bytes,
    then sending blocks."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def endless() -> Iterator[bytes]:
            for _ in range(1024):  # 64 MiB at most
                yield b"x" * 65536

        small_buffer = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)]
        timeout = httpx2.Timeout(5.0, write=0.2)
        with make_client(timeout=timeout, socket_options=small_buffer) as client:
            started = time.monotonic()
            with pytest.raises(httpx2.WriteTimeout):
                client.post(f"http://127.0.0.1:{port}/", content=endless())
            assert time.monotonic() - started < 3.0


def test_connect_refused() -> None:
    # Bound but not listening: connecting to it is refused.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        limits = httpx2.Limits(max_connections=1)
        with make_client(limits=limits, timeout=httpx2.Timeout(2.0, pool=0.2)) as client:
            for _ in range(2):  # a failed connect gives its pool slot back
                with pytest.raises(httpx2.ConnectError):
                    client.get(f"http://127.0.0.1:{port}/")


def test_connect_timeout() -> None:
    """A listener whose accept queue is full: Linux drops further SYNs."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        address = listener.getsockname()
        fillers = [socket.socket() for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(address)
            time.sleep(0.05)
            try:
                socket.create_connection(address, 0.2).close()
            except TimeoutError:
                pass
            else:
                pytest.skip("this kernel does not drop connections over the backlog")
            with make_client(timeout=httpx2.Timeout(5.0, connect=0.2)) as client:
                started = time.monotonic()
                with pytest.raises(httpx2.ConnectTimeout):
                    client.get(f"http://{address[0]}:{address[1]}/")
                assert time.monotonic() - started < 2.0
        finally:
            for filler in fillers:
                filler.close()


def test_a_huge_response_head_is_refused(serve: Serve) -> None:
    endless_head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 1_000_000
    server = serve(lambda seen: Reply([endless_head]))
    with make_client() as client:
        started = time.monotonic()
        with pytest.raises(httpx2.RemoteProtocolError, match="longer than"):
            client.get(server.url)
        assert time.monotonic() - started < 2.0


def test_an_invalid_status_line_is_a_protocol_error(serve: Serve) -> None:
    server = serve(lambda seen: Reply([b"HTTP/2 200 OK\r\n\r\n"]))
    with make_client() as client, pytest.raises(httpx2.RemoteProtocolError, match="status"):
        client.get(server.url)


def test_an_unsupported_scheme() -> None:
    with make_client() as client, pytest.raises(httpx2.UnsupportedProtocol, match="ftp"):
        client.get("ftp://127.0.0.1/file")
    with pytest.raises(httpx2.UnsupportedProtocol):
        HTTP11Transport().handle_request(httpx2.Request("GET", "ws://127.0.0.1/"))


# --- the pool -------------------------------------------------------------------------


def test_pool_timeout_while_the_only_connection_is_busy(serve: Serve) -> None:
    server = serve(held_or_free)
    with make_client(limits=httpx2.Limits(max_connections=1)) as client:
        held = client.send(client.build_request("GET", server.url + "/held"), stream=True)
        started = time.monotonic()
        with pytest.raises(httpx2.PoolTimeout):
            client.get(server.url + "/next", timeout=httpx2.Timeout(5.0, pool=0.2))
        assert 0.15 < time.monotonic() - started < 2.0
        held.close()
        assert client.get(server.url + "/next", timeout=httpx2.Timeout(5.0, pool=0.2)).text == (
            "free"
        )
    assert [seen.target for seen in server.seen] == ["/held", "/next"]
    assert server.connections == 2


def test_a_waiting_request_gets_the_connection_when_it_is_freed(serve: Serve) -> None:
    server = serve(held_or_free)
    limits = httpx2.Limits(max_connections=1)
    with make_client(limits=limits) as client, client.stream("GET", server.url + "/held") as held:
        timer = threading.Timer(0.2, held.close)
        timer.start()
        started = time.monotonic()
        resp = client.get(server.url + "/next", timeout=httpx2.Timeout(5.0, pool=3.0))
        waited = time.monotonic() - started
        timer.join()
    assert resp.text == "free"
    assert 0.15 < waited < 2.0


def test_an_idle_connection_to_another_origin_is_evicted_at_the_cap(serve: Serve) -> None:
    first = serve(lambda seen: ok(b"first"))
    second = serve(lambda seen: ok(b"second"))
    limits = httpx2.Limits(max_connections=1)
    with make_client(limits=limits, timeout=httpx2.Timeout(3.0, pool=0.5)) as client:
        assert client.get(first.url).text == "first"
        assert client.get(second.url).text == "second"  # not a PoolTimeout
        assert wait_until(lambda: 0 in first.closed_by_client)
        assert client.get(second.url).text == "second"
    assert second.connections_of() == [0, 0]


def test_no_more_idle_connections_than_the_limit(serve: Serve) -> None:
    server = serve(lambda seen: Reply([0.05, response(seen.target.encode())]))
    limits = httpx2.Limits(max_connections=10, max_keepalive_connections=1)
    with make_client(limits=limits) as client:
        texts: list[str] = []
        threads = [
            threading.Thread(target=lambda: texts.append(client.get(server.url + "/a").text))
            for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
        assert texts == ["/a"] * 3
        assert server.connections == 3
        # Two of the three were closed when they came back, one waits for reuse.
        assert wait_until(lambda: len(server.closed_by_client) == 2)
        assert client.get(server.url + "/a").text == "/a"
        assert server.connections == 3


def test_a_waiter_is_not_starved_by_a_thread_that_keeps_asking(serve: Serve) -> None:
    server = serve(lambda seen: Reply([0.02, response(seen.target.encode())]))
    order: list[str] = []
    limits = httpx2.Limits(max_connections=1)
    with make_client(limits=limits, timeout=httpx2.Timeout(3.0, pool=0.3)) as client:

        def busy() -> None:
            for i in range(20):  # about 0.4 s of requests, one after the other
                order.append(client.get(server.url + f"/busy{i}").text)

        def waiter() -> None:
            time.sleep(0.01)  # busy holds the connection by now
            try:
                order.append(client.get(server.url + "/waiter").text)
            except httpx2.PoolTimeout:
                order.append("PoolTimeout")

        threads = [threading.Thread(target=busy), threading.Thread(target=waiter)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    # In order: the waiter is next as soon as busy's first request is done.
    assert "/waiter" in order[:3], order


def test_waiters_are_served_in_the_order_they_came(serve: Serve) -> None:
    server = serve(held_or_echo)
    order: list[str] = []
    limits = httpx2.Limits(max_connections=1)
    with make_client(limits=limits, timeout=httpx2.Timeout(3.0)) as client:
        held = client.send(client.build_request("GET", server.url + "/held"), stream=True)

        def get(name: str) -> None:
            order.append(client.get(server.url + name).text)

        threads = []
        for name in ("/a", "/b", "/c", "/d"):
            thread = threading.Thread(target=get, args=(name,))
            thread.start()
            threads.append(thread)
            time.sleep(0.05)  # each is in line before the next asks
        held.close()
        for thread in threads:
            thread.join(5)
    assert order == ["/a", "/b", "/c", "/d"]
    assert server.connections == 2  # the held one, closed unfinished; then one for all


def test_a_waiter_that_timed_out_leaves_the_line(serve: Serve) -> None:
    server = serve(held_or_echo)
    results: dict[str, str] = {}
    limits = httpx2.Limits(max_connections=1)
    with make_client(limits=limits, timeout=httpx2.Timeout(3.0)) as client:
        held = client.send(client.build_request("GET", server.url + "/held"), stream=True)

        def ask(name: str, pool: float) -> None:
            try:
                timeout = httpx2.Timeout(3.0, pool=pool)
                results[name] = client.get(server.url + name, timeout=timeout).text
            except httpx2.PoolTimeout:
                results[name] = "PoolTimeout"

        early = threading.Thread(target=ask, args=("/early", 0.1))
        late = threading.Thread(target=ask, args=("/late", 3.0))
        early.start()
        time.sleep(0.03)
        late.start()
        early.join(5)
        held.close()  # the slot goes to /late: /early is no longer in line
        late.join(5)
    assert results == {"/early": "PoolTimeout", "/late": "/late"}


def test_pool_cap_holds_under_concurrency(serve: Serve) -> None:
    server = serve(lambda seen: Reply([0.01, response(seen.target.encode())]))
    results: dict[str, str] = {}
    failures: list[BaseException] = []
    limits = httpx2.Limits(max_connections=3)
    with make_client(limits=limits, timeout=httpx2.Timeout(5.0)) as client:

        def work(worker: int) -> None:
            try:
                for i in range(5):
                    path = f"/{worker}/{i}"
                    results[path] = client.get(server.url + path).text
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert not failures
    assert len(results) == 40
    assert all(path == text for path, text in results.items())
    assert 1 <= server.connections <= 3


# --- requests ---------------------------------------------------------------------------


def test_the_request_head_as_the_server_reads_it(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    with make_client() as client:
        client.get(server.url + "/v1/models?limit=2&q=a%20b", headers={"X-Custom": "yes"})
    (seen,) = server.seen
    assert seen.head.startswith(b"GET /v1/models?limit=2&q=a%20b HTTP/1.1\r\n")
    assert seen.headers["host"] == f"127.0.0.1:{server.address[1]}"
    assert seen.headers["x-custom"] == "yes"


def test_a_post_body_with_content_length_arrives_intact(serve: Serve) -> None:
    server = serve(lambda seen: ok(b"%d" % len(seen.body)))
    payload = bytes(range(256)) * 1200  # 300 KiB
    with make_client() as client:
        resp = client.post(server.url + "/upload", content=payload)
    assert resp.text == str(len(payload))
    (seen,) = server.seen
    assert seen.method == "POST"
    assert seen.headers["content-length"] == str(len(payload))
    assert "transfer-encoding" not in seen.headers
    assert seen.body == payload


def _compress_body(request: httpx2.Request) -> None:
    """A request hook that replaces the body it was built with (as a hook or an auth
    flow that compresses or signs a body does)."""
    packed = gzip.compress(request.content)
    request.stream = httpx2.ByteStream(packed)
    request.headers["Content-Encoding"] = "gzip"
    request.headers["Content-Length"] = str(len(packed))


def test_a_body_replaced_after_the_request_was_built_is_the_one_sent(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    payload = b'{"model": "m", "messages": []}' * 10
    with make_client() as client:
        client.event_hooks["request"] = [_compress_body]
        for _ in range(2):  # and the connection stays in step
            assert client.post(server.url, content=payload).status_code == 200
    for seen in server.seen:
        assert gzip.decompress(seen.body) == payload
    assert [seen.connection for seen in server.seen] == [0, 0]


def test_a_generator_body_is_sent_chunked(serve: Serve) -> None:
    server = serve(lambda seen: ok())
    parts = [b"first,", b"", b"second,", b"x" * 100_000, b"\r\n0\r\n\r\n", b"last"]

    def body() -> Iterator[bytes]:
        yield from parts

    with make_client() as client:
        assert client.post(server.url, content=body()).status_code == 200
        assert client.get(server.url).status_code == 200  # the connection is still in step
    post, get = server.seen
    assert post.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in post.headers
    assert post.body == b"".join(parts)
    assert get.connection == post.connection == 0


# --- the network stream, socket options, TLS -----------------------------------------


def test_the_network_stream_is_the_socket(serve: Serve) -> None:
    server = serve(open_body)
    with make_client() as client, client.stream("GET", server.url) as resp:
        stream = resp.extensions["network_stream"]
        sock = stream.get_extra_info("socket")
        assert isinstance(sock, socket.socket)
        assert sock.getpeername() == server.address
        assert stream.get_extra_info("ssl_object") is None
        # the two ends' addresses, as httpcore's network streams give them
        assert stream.get_extra_info("server_addr") == server.address
        assert stream.get_extra_info("client_addr") == sock.getsockname()
        assert stream.get_extra_info("no such thing") is None
        assert resp.extensions["http_version"] == b"HTTP/1.1"
        assert resp.extensions["reason_phrase"] == b"OK"


@pytest.mark.parametrize("enabled", [0, 1])
def test_socket_options_are_applied(serve: Serve, enabled: int) -> None:
    server = serve(open_body)
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, enabled)]
    with make_client(socket_options=options) as client, client.stream("GET", server.url) as resp:
        sock = resp.extensions["network_stream"].get_extra_info("socket")
        assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is bool(enabled)


def test_https_with_a_trusted_certificate(
    tls_server: RawServer, certificate: tuple[Path, Path]
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    with make_client(verify=trusted) as client:
        resp, pieces = streamed(client, tls_server.url + "/secure")
        assert b"".join(pieces) == b"/secure"
        ssl_object = resp.extensions["network_stream"].get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLSocket)
        assert ssl_object.version() is not None
        assert b"".join(streamed(client, tls_server.url + "/again")[1]) == b"/again"
    assert tls_server.connections_of() == [0, 0]


def test_https_with_an_untrusted_certificate_is_a_connect_error(tls_server: RawServer) -> None:
    with make_client() as client, pytest.raises(httpx2.ConnectError, match="CERTIFICATE"):
        client.get(tls_server.url)
    assert tls_server.seen == []


def test_https_without_verification(tls_server: RawServer) -> None:
    with make_client(verify=False) as client:
        assert client.get(tls_server.url + "/unverified").text == "/unverified"


def test_https_to_a_plain_http_server_is_a_connect_error(serve: Serve) -> None:
    server = serve(lambda seen: ok(), greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n")
    url = server.url.replace("http://", "https://")
    with make_client(verify=False) as client, pytest.raises(httpx2.ConnectError):
        client.get(url)


# --- the real local server, through deltastream ---------------------------------------


@pytest.mark.parametrize("http_client", ["default", "explicit"])
def test_a_chat_stream_from_the_local_server(server_url: str, http_client: str) -> None:
    """Two streams, each read to the end, over one connection of this transport."""
    messages = [{"role": "user", "content": "Write a story about a robot."}]
    sockets: list[socket.socket] = []
    with contextlib.ExitStack() as stack:
        http = None
        if http_client == "explicit":
            http = stack.enter_context(httpx2.Client(transport=HTTP11Transport()))
        client = stack.enter_context(
            deltastream.Client(base_url=server_url, api_key="sk-test", http_client=http)
        )
        for _ in range(2):
            stream = client.chat.completions.create(model="m", messages=messages, stream=True)
            network_stream = stream.response.extensions["network_stream"]
            assert isinstance(network_stream, NetworkStream)
            sockets.append(network_stream.get_extra_info("socket"))
            with stream:
                text = "".join(
                    part.choices[0].delta.content or "" for part in stream if part.choices
                )
            assert "robot" in text.lower()
            final = stream.current_snapshot
            assert final.choices[0].message.content == text
            assert final.choices[0].finish_reason == "stop"
    assert sockets[0] is sockets[1]  # the second stream reused the first one's connection


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Id: a\r\nX-Id: b\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nX-Note: caf\xc3\xa9\r\n\r\n",  # not ASCII
    ],
)
def test_the_response_built_by_hand_is_the_one_httpx2_builds(raw: bytes) -> None:
    # make_response sets a Response's attributes itself rather than run its
    # constructor: a release of httpx2 that adds or renames one must fail here.
    parsed = ResponseHead.parse(raw)
    assert parsed is not None
    head = parsed[0]
    network = NetworkStream(None)
    body = httpx2.ByteStream(b"")
    ours = make_response(head, body, network)
    theirs = httpx2.Response(
        head.status,
        headers=head.headers,
        stream=body,
        extensions={
            "http_version": head.http_version,
            "reason_phrase": head.reason,
            "network_stream": network,
            BODY_EXTENSION: body,
        },
    )
    state = dict(vars(ours))
    expected = dict(vars(theirs))
    assert state.pop("headers")._list == expected.pop("headers")._list
    assert state == expected
    assert ours.headers.encoding == theirs.headers.encoding
    assert ours.headers.multi_items() == theirs.headers.multi_items()


_NAMES = ["Content-Type", "content-type", "Set-Cookie", "X-Id", "Content-Encoding"]


@given(
    st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(["a", "b, c", "é", ""]))),
    st.sampled_from(["content-type", "set-cookie", "x-id", "content-encoding", "absent"]),
)
def test_header_finds_what_httpx2_get_finds(items: list[tuple[str, str]], name: str) -> None:
    headers = httpx2.Headers([(key.encode(), value.encode("utf-8")) for key, value in items])
    assert header(headers, name.encode()) == headers.get(name)


def test_closing_the_client_ends_a_body_being_read(serve: Serve) -> None:
    """As httpx2's own pool does (and so openai's stream fails there): closing the client
    closes the connections in use too, and a body still being read says why it ended."""
    go_on = threading.Event()
    server = serve(lambda seen: Reply([CHUNKED_HEAD + chunk(b"first"), go_on, chunk(b"more")]))
    client = make_client()
    with client.stream("GET", server.url) as resp:
        pieces = resp.iter_bytes()
        assert next(pieces) == b"first"
        client.close()
        with pytest.raises(httpx2.ReadError, match="client was closed"):
            next(pieces)
    go_on.set()
    assert wait_until(lambda: 0 in server.closed_by_client)


def test_closing_the_client_wakes_a_read_blocked_in_another_thread(serve: Serve) -> None:
    go_on = threading.Event()
    server = serve(lambda seen: Reply([CHUNKED_HEAD + chunk(b"first"), go_on]))
    client = make_client(timeout=30.0)
    outcome: list[BaseException | None] = []
    with client.stream("GET", server.url) as resp:
        pieces = resp.iter_bytes()
        assert next(pieces) == b"first"

        def read_on() -> None:
            try:
                next(pieces)
                outcome.append(None)
            except BaseException as exc:  # recorded, checked below
                outcome.append(exc)

        reader = threading.Thread(target=read_on)
        reader.start()
        time.sleep(0.1)  # blocked in recv by now
        started = time.monotonic()
        client.close()
        reader.join(5.0)
        assert time.monotonic() - started < 2.0
    go_on.set()
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx2.ReadError)


def test_closing_the_client_twice_over_an_open_stream_does_not_raise(serve: Serve) -> None:
    """The second close finds the stream's socket already shut down and the server gone
    (the socket cannot be shut down again): nothing to do, nothing raised."""
    server = serve(lambda seen: Reply([CHUNKED_HEAD + chunk(b"first")], close=True))
    client = make_client()
    with client.stream("GET", server.url) as resp:
        pieces = resp.iter_bytes()
        assert next(pieces) == b"first"
        client.close()
        time.sleep(0.2)
        client._transport.close()
        with pytest.raises(httpx2.TransportError):
            next(pieces)
