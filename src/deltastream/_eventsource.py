"""An event-stream client that reconnects: ``connect`` and its async twin ``aconnect``.

Any server that speaks Server-Sent Events will do (MCP servers, notification feeds,
CI logs)::

    with sse.connect("https://example.com/feed") as source:
        for event in source:
            print(event.id, event.data)

Rules (WHATWG HTML, "server-sent events", with the client's own limits):

- Each request says ``Accept: text/event-stream`` and ``Cache-Control: no-store`` and,
  once an id is known, ``Last-Event-ID``. A 2xx answer that is not
  ``text/event-stream`` raises ``APIResponseValidationError`` quoting the body start.
- 204 ends the iteration for good. 408, 429 and 5xx, connection errors, a passed
  deadline and a clean end of the body all lead to a reconnect; any other status
  raises its ``APIStatusError`` subclass.
- The wait before a reconnect is the server's ``retry:`` value (``default_retry_ms``
  until it sends one), plus up to 25% jitter. Attempts that deliver no new event back
  off: the wait doubles with each, never past ``max_retry_ms``, and never below what a
  ``Retry-After`` header asks. After ``max_reconnects`` such attempts in a row,
  ``ReconnectsExhaustedError``. A connection that delivers an event resets the count.
- Deduplication: an event whose id (the last event ID in force when it was dispatched)
  equals an id already passed on over an *earlier* connection is dropped, so a server
  that replays from before ``Last-Event-ID`` delivers nothing twice. Within one
  connection nothing is dropped. The last 4096 distinct ids are remembered.
- Deadlines are those of ``Timeout`` and apply per connection. By default only
  ``connect``, ``write`` and ``pool`` apply (a feed may be silent for hours); set
  ``idle`` (with ``comments_count=True`` if the server sends keep-alive comments) to
  treat a silent connection as dropped: it is reconnected and reported to the hook.

All decisions are pure functions or live in :class:`_Session` (no I/O); the sync and
async shells only send, read and sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, NoReturn

import httpx2

from .engine._deadlines import Timeout, Watch, watchdog
from .engine._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    StreamDecodeError,
    status_error,
)
from .engine._http import (
    aiter_body,
    aread_head,
    check_event_stream,
    is_event_stream,
    iter_body,
    parse_error_body,
    read_errors,
    read_head,
    transport_error,
)
from .engine._retry import server_retry_after
from .engine._sse import DEFAULT_MAX_EVENT_SIZE, EventTooLargeError, ServerSentEvent, SSEDecoder
from .transport._common import ClientClosedError

__all__ = [
    "DEFAULT_RETRY_MS",
    "MAX_RETRY_MS",
    "SSE_TIMEOUT",
    "AsyncEventSource",
    "EventSource",
    "ReconnectInfo",
    "ReconnectsExhaustedError",
    "aconnect",
    "connect",
    "is_replayed",
    "reconnect_delay",
    "response_action",
]

DEFAULT_RETRY_MS: Final = 3000
MAX_RETRY_MS: Final = 60_000
JITTER: Final = 0.25
MIN_BACKOFF_MS: Final = 50  # the floor for backing off, even after `retry: 0`
SEEN_IDS_LIMIT: Final = 4096
ERROR_BODY_LIMIT: Final = 64 * 1024
_PREVIEW: Final = 512

# A feed may stay silent for hours: no first_token/idle deadline unless asked for.
SSE_TIMEOUT: Final = Timeout(first_token=None, idle=None)

Action = Literal["stream", "stop", "retry", "fail"]
Reason = Literal["end", "error", "timeout", "status"]


# -- pure decisions ---------------------------------------------------------------------


def response_action(status: int) -> Action:
    """What a response status means for an event stream.

    ``stream``: read the body; ``stop``: end for good (204); ``retry``: reconnect after
    a back-off (408, 429, 5xx); ``fail``: raise (every other status).
    """
    if status == 204:
        return "stop"
    if 200 <= status < 300:
        return "stream"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "fail"


def reconnect_delay(
    retry_ms: int | None,
    attempt: int,
    *,
    rand: float,
    default_retry_ms: int = DEFAULT_RETRY_MS,
    max_retry_ms: int = MAX_RETRY_MS,
    asked: float | None = None,
) -> float:
    """Seconds to wait before reconnection ``attempt`` (1 after a connection that
    delivered events, then 2, 3, ... while attempts deliver nothing).

    ``retry_ms`` is the server's last ``retry:`` value (None if it sent none), ``rand``
    a number in [0, 1) for the jitter and ``asked`` a ``Retry-After`` in seconds.
    """
    base = default_retry_ms if retry_ms is None else retry_ms
    if attempt > 1:
        base = max(base, MIN_BACKOFF_MS)
    doublings = min(max(attempt - 1, 0), 32)
    ms = min(base * (1 << doublings) * (1 + JITTER * rand), max_retry_ms)
    if asked is not None and asked * 1000 > ms:
        ms = min(asked * 1000, max_retry_ms)
    return max(ms, 0) / 1000


def is_replayed(event_id: str, seen: Mapping[str, int], connection: int) -> bool:
    """Whether an event is a replay to drop: its id was passed on over an earlier
    connection. ``seen`` maps each id passed on to the connection (counted from 0)
    that passed it on first; ``connection`` is the current one."""
    first = seen.get(event_id)
    return event_id != "" and first is not None and first < connection


# -- public values ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconnectInfo:
    """What ``on_reconnect`` is told before each reconnect (it may raise to stop).

    ``attempt`` counts attempts in a row that delivered no event (1 after a productive
    connection); ``reason`` is ``end`` (the body ended), ``error`` (the connection
    failed), ``timeout`` (a deadline passed; ``error.deadline`` names it) or
    ``status`` (408, 429 or 5xx).
    """

    attempt: int
    delay: float
    reason: Reason
    error: APIError | None
    last_event_id: str
    events_received: int


class ReconnectsExhaustedError(APIConnectionError):
    """``max_reconnects`` attempts in a row delivered no event. ``last_error`` is what
    ended the last one (None for a clean end of body); ``events_received`` counts the
    events passed on over the source's life."""

    attempts: int
    last_error: APIError | None

    def __init__(
        self,
        *,
        request: httpx2.Request,
        attempts: int,
        events_received: int,
        last_error: APIError | None,
    ) -> None:
        cause = "the body ended" if last_error is None else last_error.message
        super().__init__(
            message=(
                f"Gave up after {attempts} reconnection attempts in a row without a new "
                f"event ({events_received} events delivered); the last: {cause}"
            ),
            request=request,
        )
        self.attempts = attempts
        self.last_error = last_error
        self.events_received = events_received


@dataclass(slots=True)
class _Drop:
    """Why a connection ended without a final answer."""

    reason: Reason
    error: APIError | None = None
    asked: float | None = None  # Retry-After, seconds
    final: bool = False  # nothing to reconnect through: the client was closed


# -- the protocol state ---------------------------------------------------------------


class _Session:
    """Everything the twins share: request building, status and body handling, dedup
    and reconnect planning. Pure apart from calling the hook."""

    def __init__(
        self,
        *,
        url: str,
        method: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, Any] | None,
        json: Any,
        timeout: float | Timeout | httpx2.Timeout | None,
        reconnect: bool,
        max_reconnects: int,
        default_retry_ms: int,
        max_retry_ms: int,
        on_reconnect: Callable[[ReconnectInfo], None] | None,
        last_event_id: str,
        max_event_size: int,
    ) -> None:
        self.url = url
        self.method = method
        self.headers = dict(headers or {})
        self.params = dict(params) if params is not None else None
        self.json = json
        self.timeout = SSE_TIMEOUT if timeout is None else Timeout.of(timeout)
        self.reconnect = reconnect
        self.max_reconnects = max_reconnects
        self.default_retry_ms = default_retry_ms
        self.max_retry_ms = max_retry_ms
        self.on_reconnect = on_reconnect
        self.max_event_size = max_event_size
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self.events_received = 0
        self.reconnects = 0  # reconnects made over the source's life
        self.connection = -1
        self.failures = 0  # attempts in a row that delivered nothing
        self.seen: dict[str, int] = {}
        self.request: httpx2.Request | None = None
        self.response: httpx2.Response | None = None
        self._decoder = SSEDecoder(max_event_size)
        self._delivered = 0  # events passed on over the current connection
        self._decoder_id = ""

    def build(self, http: httpx2.Client | httpx2.AsyncClient) -> httpx2.Request:
        self.connection += 1
        self._delivered = 0
        self.response = None
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store", **self.headers}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        self.request = http.build_request(
            self.method,
            self.url,
            params=self.params,
            headers=headers,
            json=self.json,
            timeout=self.timeout.transport(),
        )
        return self.request

    def start(self, response: httpx2.Response, sent_at: float) -> Watch:
        """The headers are in and the body is an event stream: watch it."""
        self._decoder = SSEDecoder(self.max_event_size)
        self._decoder_id = ""
        return Watch.of_response(self.timeout, response, sent_at)

    def feed(self, data: bytes, watch: Watch) -> tuple[list[ServerSentEvent], APIError | None]:
        """The events to pass on from one chunk, and an error to raise after them."""
        error: APIError | None = None
        try:
            events = self._decoder.feed(data)
        except EventTooLargeError as exc:
            events = exc.events
            assert self.response is not None
            error = StreamDecodeError(str(exc), response=self.response, data=b"", too_large=True)
        if events or self.timeout.comments_count:
            watch.progress(time.monotonic())
        fresh = [e for e in events if not is_replayed(e.id, self.seen, self.connection)]
        for event in fresh:
            if event.id and event.id not in self.seen:
                self.seen[event.id] = self.connection
                if len(self.seen) > SEEN_IDS_LIMIT:
                    del self.seen[next(iter(self.seen))]
        self._delivered += len(fresh)
        self.events_received += len(fresh)
        decoder = self._decoder
        if decoder.retry is not None:
            self.retry_ms = decoder.retry
        # An id-only block moves the last event ID too (a checkpoint); a replayed id never
        # moves it back.
        if decoder.last_event_id != self._decoder_id:
            self._decoder_id = decoder.last_event_id
            if not is_replayed(self._decoder_id, self.seen, self.connection):
                self.last_event_id = self._decoder_id
        if error is not None:
            error.events_received = self.events_received
        return fresh, error

    def status(self, response: httpx2.Response, head: bytes) -> _Drop:
        """A non-2xx answer whose body start is ``head``: raise or plan a reconnect."""
        error = status_error(response, parse_error_body(head))
        if response_action(response.status_code) == "fail":
            raise self.fail(error)
        return _Drop("status", error, server_retry_after(response.headers))

    def wrong_type(self, response: httpx2.Response, head: bytes) -> NoReturn:
        try:
            check_event_stream(response, head)
        except APIError as exc:
            raise self.fail(exc) from None
        raise AssertionError("only called for a response that is not an event stream")

    def broken(self, exc: BaseException, request: httpx2.Request, watch: Watch | None) -> _Drop:
        expired = None if watch is None else watch.expired
        if expired is not None:
            name, seconds = expired
            return _Drop("timeout", APITimeoutError(request, deadline=name, seconds=seconds))
        final = isinstance(exc, ClientClosedError)
        return _Drop("error", transport_error(exc, request), final=final)

    def ended(self, watch: Watch) -> _Drop:
        expired = watch.expired
        if expired is not None and self.request is not None:
            name, seconds = expired
            return _Drop("timeout", APITimeoutError(self.request, deadline=name, seconds=seconds))
        return _Drop("end")

    def plan(self, drop: _Drop) -> float | None:
        """Seconds to wait before reconnecting, or None to end the iteration."""
        if not self.reconnect or drop.final:
            if drop.error is not None:
                raise self.fail(drop.error)
            return None
        if self._delivered:
            self.failures = 0
        self.failures += 1
        if self.failures > self.max_reconnects:
            assert self.request is not None
            raise ReconnectsExhaustedError(
                request=self.request,
                attempts=self.failures - 1,
                events_received=self.events_received,
                last_error=drop.error,
            ) from drop.error
        delay = reconnect_delay(
            self.retry_ms,
            self.failures,
            rand=random.random(),
            default_retry_ms=self.default_retry_ms,
            max_retry_ms=self.max_retry_ms,
            asked=drop.asked,
        )
        if self.on_reconnect is not None:
            self.on_reconnect(
                ReconnectInfo(
                    attempt=self.failures,
                    delay=delay,
                    reason=drop.reason,
                    error=drop.error,
                    last_event_id=self.last_event_id,
                    events_received=self.events_received,
                )
            )
        self.reconnects += 1
        return delay

    def fail(self, error: APIError) -> APIError:
        error.events_received = self.events_received
        return error


def _is_event_stream(response: httpx2.Response) -> bool:
    return is_event_stream(response.headers.get("content-type"))


# -- the shells -------------------------------------------------------------------------


class _SourceBase:
    _session: _Session

    @property
    def last_event_id(self) -> str:
        """The id a reconnect would send as ``Last-Event-ID``."""
        return self._session.last_event_id

    @property
    def retry_ms(self) -> int | None:
        """The server's last ``retry:`` value in milliseconds (None if it sent none)."""
        return self._session.retry_ms

    @property
    def events_received(self) -> int:
        """Events passed on so far (replays dropped are not counted)."""
        return self._session.events_received

    @property
    def reconnects(self) -> int:
        """Reconnects made so far."""
        return self._session.reconnects

    @property
    def response(self) -> httpx2.Response | None:
        """The current connection's response (None between connections)."""
        return self._session.response


class EventSource(_SourceBase):
    """Server-sent events from a URL, reconnecting as the spec says. Use ``with``."""

    def __init__(self, *, client: httpx2.Client | None, session: _Session) -> None:
        self._session = session
        self._own_client = client is None
        self._http = httpx2.Client(follow_redirects=True) if client is None else client
        self._iterator = self._events()

    def __iter__(self) -> Generator[ServerSentEvent, None, None]:
        return self._iterator

    def __next__(self) -> ServerSentEvent:
        return next(self._iterator)

    def __enter__(self) -> EventSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (and the client if this source made it)."""
        with contextlib.suppress(ValueError):  # ValueError: closed from inside the loop
            self._iterator.close()
        if self._own_client:
            self._http.close()

    def _events(self) -> Generator[ServerSentEvent, None, None]:
        s, http = self._session, self._http
        while True:
            request = s.build(http)
            sent_at = time.monotonic()
            try:
                response = http.send(request, stream=True)
            except read_errors() as exc:
                drop = s.broken(exc, request, None)
            else:
                s.response = response
                try:
                    action = response_action(response.status_code)
                    if action == "stop":
                        return
                    if action != "stream":
                        drop = s.status(response, read_head(response, ERROR_BODY_LIMIT))
                    elif not _is_event_stream(response):
                        s.wrong_type(response, read_head(response, _PREVIEW))
                    else:
                        watch = s.start(response, sent_at)
                        watchdog.watch(watch)
                        try:
                            for data in iter_body(response):
                                events, error = s.feed(data, watch)
                                yield from events
                                if error is not None:
                                    raise error
                            drop = s.ended(watch)
                        except read_errors() as exc:
                            drop = s.broken(exc, request, watch)
                        finally:
                            watchdog.unwatch(watch)
                finally:
                    response.close()
                    s.response = None
            delay = s.plan(drop)
            if delay is None:
                return
            time.sleep(delay)


class AsyncEventSource(_SourceBase):
    """The async twin of :class:`EventSource`. Use ``async with``."""

    def __init__(self, *, client: httpx2.AsyncClient | None, session: _Session) -> None:
        self._session = session
        self._own_client = client is None
        self._http = httpx2.AsyncClient(follow_redirects=True) if client is None else client
        self._iterator = self._events()

    def __aiter__(self) -> AsyncGenerator[ServerSentEvent, None]:
        return self._iterator

    async def __anext__(self) -> ServerSentEvent:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncEventSource:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (and the client if this source made it)."""
        with contextlib.suppress(RuntimeError):  # RuntimeError: running in another task
            await self._iterator.aclose()
        if self._own_client:
            await self._http.aclose()

    close = aclose

    async def _events(self) -> AsyncGenerator[ServerSentEvent, None]:
        s, http = self._session, self._http
        while True:
            request = s.build(http)
            sent_at = time.monotonic()
            try:
                response = await http.send(request, stream=True)
            except read_errors() as exc:
                drop = s.broken(exc, request, None)
            else:
                s.response = response
                try:
                    action = response_action(response.status_code)
                    if action == "stop":
                        return
                    if action != "stream":
                        drop = s.status(response, await aread_head(response, ERROR_BODY_LIMIT))
                    elif not _is_event_stream(response):
                        s.wrong_type(response, await aread_head(response, _PREVIEW))
                    else:
                        watch = s.start(response, sent_at)
                        watchdog.watch(watch)
                        try:
                            async for data in aiter_body(response):
                                events, error = s.feed(data, watch)
                                for event in events:
                                    yield event
                                if error is not None:
                                    raise error
                            drop = s.ended(watch)
                        except read_errors() as exc:
                            drop = s.broken(exc, request, watch)
                        finally:
                            watchdog.unwatch(watch)
                finally:
                    await response.aclose()
                    s.response = None
            delay = s.plan(drop)
            if delay is None:
                return
            await asyncio.sleep(delay)


def connect(
    url: str,
    *,
    client: httpx2.Client | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    timeout: float | Timeout | httpx2.Timeout | None = None,
    reconnect: bool = True,
    max_reconnects: int = 10,
    default_retry_ms: int = DEFAULT_RETRY_MS,
    max_retry_ms: int = MAX_RETRY_MS,
    on_reconnect: Callable[[ReconnectInfo], None] | None = None,
    last_event_id: str = "",
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
) -> EventSource:
    """Open an event stream: a context manager and iterator of ``ServerSentEvent``.

    Nothing is sent until the first event is asked for. ``client`` is any
    ``httpx2.Client`` (its auth, base URL and headers apply; it is not closed); without
    one the source makes its own. ``timeout=None`` means :data:`SSE_TIMEOUT`.
    ``reconnect=False`` ends the iteration at the end of the body and raises on errors.
    """
    session = _Session(
        url=url,
        method=method,
        headers=headers,
        params=params,
        json=json,
        timeout=timeout,
        reconnect=reconnect,
        max_reconnects=max_reconnects,
        default_retry_ms=default_retry_ms,
        max_retry_ms=max_retry_ms,
        on_reconnect=on_reconnect,
        last_event_id=last_event_id,
        max_event_size=max_event_size,
    )
    return EventSource(client=client, session=session)


def aconnect(
    url: str,
    *,
    client: httpx2.AsyncClient | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    timeout: float | Timeout | httpx2.Timeout | None = None,
    reconnect: bool = True,
    max_reconnects: int = 10,
    default_retry_ms: int = DEFAULT_RETRY_MS,
    max_retry_ms: int = MAX_RETRY_MS,
    on_reconnect: Callable[[ReconnectInfo], None] | None = None,
    last_event_id: str = "",
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
) -> AsyncEventSource:
    """The async twin of :func:`connect`: use ``async with`` and ``async for``."""
    session = _Session(
        url=url,
        method=method,
        headers=headers,
        params=params,
        json=json,
        timeout=timeout,
        reconnect=reconnect,
        max_reconnects=max_reconnects,
        default_retry_ms=default_retry_ms,
        max_retry_ms=max_retry_ms,
        on_reconnect=on_reconnect,
        last_event_id=last_event_id,
        max_event_size=max_event_size,
    )
    return AsyncEventSource(client=client, session=session)
