"""``sse.connect`` / ``sse.aconnect``: the pure rules as tables, then the client against a
local server (real loopback sockets) that drops connections and resumes by
``Last-Event-ID``. Every end-to-end test runs once sync and once async."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from deltastream import Timeout
from deltastream._eventsource import (
    ReconnectInfo,
    ReconnectsExhaustedError,
    aconnect,
    connect,
    is_replayed,
    reconnect_delay,
    response_action,
)
from deltastream.engine._errors import (
    APIResponseValidationError,
    APITimeoutError,
    NotFoundError,
    StreamDecodeError,
)
from deltastream.server import run_in_thread
from deltastream.sse import ServerSentEvent

# -- pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, "stream"),
        (201, "stream"),
        (204, "stop"),
        (301, "fail"),
        (400, "fail"),
        (401, "fail"),
        (404, "fail"),
        (408, "retry"),
        (409, "fail"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_what_a_status_means(status: int, action: str) -> None:
    assert response_action(status) == action


@pytest.mark.parametrize(
    ("retry_ms", "attempt", "rand", "asked", "seconds"),
    [
        (None, 1, 0.0, None, 3.0),  # the documented default
        (50, 1, 0.0, None, 0.05),  # the server's retry: value
        (50, 1, 1.0, None, 0.0625),  # plus at most 25% jitter
        (1000, 2, 0.0, None, 2.0),  # fruitless attempts double it
        (1000, 3, 0.0, None, 4.0),
        (1000, 30, 0.5, None, 60.0),  # capped
        (1000, 10**6, 0.0, None, 60.0),  # no overflow
        (0, 1, 0.5, None, 0.0),  # retry: 0 after a productive connection
        (0, 2, 0.0, None, 0.1),  # but backing off starts from at least 50 ms
        (50, 1, 0.0, 2.0, 2.0),  # Retry-After asks for longer
        (5000, 1, 0.0, 2.0, 5.0),  # ... or less, and is ignored
        (50, 1, 0.0, 999.0, 60.0),  # ... within the cap
    ],
)
def test_the_wait_before_a_reconnect(
    retry_ms: int | None, attempt: int, rand: float, asked: float | None, seconds: float
) -> None:
    delay = reconnect_delay(retry_ms, attempt, rand=rand, asked=asked)
    assert delay == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("event_id", "connection", "replayed"),
    [
        ("1", 1, True),  # passed on over connection 0: a replay
        ("3", 1, True),
        ("3", 2, True),
        ("3", 0, False),  # passed on over this connection: the id merely stays in force
        ("4", 1, False),  # new
        ("", 1, False),  # no id: nothing to compare
    ],
)
def test_which_events_are_replays(event_id: str, connection: int, replayed: bool) -> None:
    seen = {"1": 0, "2": 0, "3": 0}
    assert is_replayed(event_id, seen, connection) is replayed


def test_the_limits_are_keyword_options_of_the_delay() -> None:
    delay = reconnect_delay(None, 1, rand=0.0, default_retry_ms=100, max_retry_ms=80)
    assert delay == pytest.approx(0.08)


# -- the server ---------------------------------------------------------------------------


@dataclass
class Feed:
    """What the server saw, per test key."""

    requests: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request) -> int:
        """Log the request's headers; return how many came before it for its key."""
        key = request.query_params.get("key", "")
        with self.lock:
            seen = self.requests.setdefault(key, [])
            seen.append(dict(request.headers))
            return len(seen) - 1

    def headers(self, key: str) -> list[dict[str, str]]:
        with self.lock:
            return list(self.requests.get(key, []))


def _event(i: int) -> bytes:
    return f"id: {i}\ndata: event {i}\n\n".encode()


def make_app(feed: Feed) -> Starlette:
    async def numbers(request: Request) -> Response:
        """Events 0..total-1, ``per`` a connection, resumed after ``Last-Event-ID`` (less
        ``replay`` already-seen ones); the first ``fails`` requests answer 503; 204 at
        the end. ``mode=abort`` cuts the connection mid-event instead of ending it."""
        n = feed.record(request)
        q = request.query_params
        total, per = int(q.get("total", "9")), int(q.get("per", "3"))
        if n < int(q.get("fails", "0")):
            return PlainTextResponse("busy", status_code=503)
        last = request.headers.get("last-event-id")
        resume = 0 if last is None else int(last) + 1
        if resume >= total:
            return Response(status_code=204)
        start = max(0, resume - int(q.get("replay", "0")))
        abort = q.get("mode") == "abort"

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 50\n\n"
            for i in range(start, min(start + per, total)):
                yield _event(i)
            if abort:
                yield b"id: 999\ndata: never finished"  # discarded, id not taken
                raise RuntimeError("connection dropped on purpose")

        return StreamingResponse(body(), media_type="text/event-stream")

    async def silent(request: Request) -> Response:
        """One event, then silence; resumed, the second; then 204."""
        feed.record(request)
        last = request.headers.get("last-event-id")
        if last == "2":
            return Response(status_code=204)

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 50\n\n"
            if last is None:
                yield _event(1)
                await asyncio.sleep(5)
            else:
                yield _event(2)

        return StreamingResponse(body(), media_type="text/event-stream")

    async def dwindling(request: Request) -> Response:
        """Two events on the first connection, none ever after."""
        n = feed.record(request)

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 20\n\n"
            if n == 0:
                yield _event(0) + _event(1)

        return StreamingResponse(body(), media_type="text/event-stream")

    async def status(request: Request) -> Response:
        feed.record(request)
        return PlainTextResponse("nope", status_code=int(request.query_params["code"]))

    async def text(request: Request) -> Response:
        feed.record(request)
        return PlainTextResponse("hello, not a stream")

    routes = [
        Route("/numbers", numbers),
        Route("/silent", silent),
        Route("/dwindling", dwindling),
        Route("/status", status),
        Route("/text", text),
    ]
    return Starlette(routes=[Mount("/v1", routes=routes)])


@pytest.fixture(scope="module")
def feed() -> Feed:
    return Feed()


@pytest.fixture(scope="module")
def base(feed: Feed) -> Iterator[str]:
    with run_in_thread(make_app(feed)) as url:
        yield url


_keys = itertools.count()


@pytest.fixture
def key() -> str:
    return f"k{next(_keys)}"


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Result:
    events: list[ServerSentEvent]
    reconnects: int
    last_event_id: str
    hooks: list[ReconnectInfo]


async def collect(kind: str, url: str, *, own_client: bool = True, **options: Any) -> Result:
    """Read a source to its end with ``connect`` or ``aconnect``."""
    hooks: list[ReconnectInfo] = []
    options.setdefault("on_reconnect", hooks.append)
    events: list[ServerSentEvent] = []
    if kind == "sync":
        with httpx2.Client() as http:
            client = None if own_client else http
            with connect(url, client=client, **options) as source:
                events.extend(source)
                return Result(events, source.reconnects, source.last_event_id, hooks)
    async with httpx2.AsyncClient() as ahttp:
        aclient = None if own_client else ahttp
        async with aconnect(url, client=aclient, **options) as asource:
            events.extend([event async for event in asource])
            return Result(events, asource.reconnects, asource.last_event_id, hooks)


# -- end to end ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["eof", "abort"])
async def test_every_event_arrives_once_in_order_across_drops(
    kind: str, mode: str, base: str, key: str, feed: Feed
) -> None:
    url = f"{base}/numbers?key={key}&total=10&per=3&mode={mode}"
    result = await collect(kind, url)
    assert [e.data for e in result.events] == [f"event {i}" for i in range(10)]
    assert [e.id for e in result.events] == [str(i) for i in range(10)]
    assert result.reconnects == 4  # after events 2, 5, 8 and 9; then 204
    assert result.last_event_id == "9"
    assert {h.reason for h in result.hooks} == {"end" if mode == "eof" else "error"}
    assert [h.attempt for h in result.hooks] == [1, 1, 1, 1]
    assert all(0.05 <= h.delay <= 0.0625 for h in result.hooks)  # retry: 50 plus jitter


async def test_the_headers_sent(kind: str, base: str, key: str, feed: Feed) -> None:
    await collect(kind, f"{base}/numbers?key={key}&total=6&per=3", own_client=False)
    sent = feed.headers(key)
    assert [h.get("last-event-id") for h in sent] == [None, "2", "5"]
    for headers in sent:
        assert headers["accept"] == "text/event-stream"
        assert headers["cache-control"] == "no-store"


async def test_a_known_last_event_id_is_sent_on_the_first_request(
    kind: str, base: str, key: str, feed: Feed
) -> None:
    result = await collect(kind, f"{base}/numbers?key={key}&total=6", last_event_id="3")
    assert [e.id for e in result.events] == ["4", "5"]
    assert feed.headers(key)[0]["last-event-id"] == "3"


async def test_replayed_ids_are_dropped(kind: str, base: str, key: str) -> None:
    url = f"{base}/numbers?key={key}&total=10&per=4&replay=2"
    result = await collect(kind, url)
    assert [e.id for e in result.events] == [str(i) for i in range(10)]


async def test_204_stops_for_good(kind: str, base: str, key: str, feed: Feed) -> None:
    result = await collect(kind, f"{base}/status?key={key}&code=204")
    assert result.events == []
    assert len(feed.headers(key)) == 1


async def test_404_raises_without_reconnecting(kind: str, base: str, key: str, feed: Feed) -> None:
    with pytest.raises(NotFoundError) as info:
        await collect(kind, f"{base}/status?key={key}&code=404")
    assert info.value.status_code == 404
    assert "nope" in info.value.message
    assert len(feed.headers(key)) == 1


async def test_503_backs_off_then_reconnects(kind: str, base: str, key: str, feed: Feed) -> None:
    url = f"{base}/numbers?key={key}&total=3&per=3&fails=2"
    result = await collect(kind, url, default_retry_ms=30)
    assert [e.id for e in result.events] == ["0", "1", "2"]
    assert [h.reason for h in result.hooks] == ["status", "status", "end"]
    assert [h.attempt for h in result.hooks] == [1, 2, 1]
    assert result.hooks[1].delay >= 0.06  # doubled
    assert len(feed.headers(key)) == 4  # 503, 503, the events, 204


async def test_a_wrong_content_type_raises(kind: str, base: str, key: str) -> None:
    with pytest.raises(APIResponseValidationError, match="hello, not a stream"):
        await collect(kind, f"{base}/text?key={key}")


async def test_a_silent_connection_is_reconnected(kind: str, base: str, key: str) -> None:
    result = await collect(kind, f"{base}/silent?key={key}", timeout=Timeout(idle=0.3))
    assert [e.data for e in result.events] == ["event 1", "event 2"]
    assert [h.reason for h in result.hooks] == ["timeout", "end"]
    error = result.hooks[0].error
    assert isinstance(error, APITimeoutError)
    assert error.deadline == "idle"


async def test_exhausted_reconnects_raise_with_the_count_delivered(
    kind: str, base: str, key: str, feed: Feed
) -> None:
    with pytest.raises(ReconnectsExhaustedError) as info:
        await collect(kind, f"{base}/dwindling?key={key}", max_reconnects=3)
    assert info.value.events_received == 2
    assert info.value.attempts == 3
    assert info.value.last_error is None  # each connection ended cleanly, but empty
    assert len(feed.headers(key)) == 4


async def test_without_reconnect_the_end_of_the_body_ends_it(
    kind: str, base: str, key: str, feed: Feed
) -> None:
    result = await collect(kind, f"{base}/numbers?key={key}&total=9", reconnect=False)
    assert [e.id for e in result.events] == ["0", "1", "2"]
    assert len(feed.headers(key)) == 1


async def test_an_oversized_event_raises_after_the_ones_before_it(
    kind: str, base: str, key: str
) -> None:
    with pytest.raises(StreamDecodeError, match="max_event_size"):
        await collect(kind, f"{base}/numbers?key={key}", max_event_size=4)
