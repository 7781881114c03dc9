"""``BaseStream`` and ``BaseAsyncStream``: the response body as typed items, the shells
under both faces' stream classes (which add what is typed in their own types:
snapshots, final results).

All protocol work happens in ``_protocol`` (:class:`ChunkStream`,
:class:`ResponseEventStream`), which is pure (bytes in, items out): SSE decoding,
``[DONE]``, in-band errors, typed decoding. The two shells here only pull bytes from the
HTTP response, accumulate what they hand over and decide what happens to the
connection. Rules they keep:

- After ``[DONE]`` the rest of the body is drained (a bounded amount) so the
  connection goes back to the pool; ``close()`` or abandoning a stream closes the
  response at once, which discards the connection rather than reusing a dirty one.
- Every error raised while reading carries ``partial`` (the completion accumulated so
  far) and ``events_received``. Transport failures are translated in ``_http`` only.
- Deadlines are enforced by ``_deadlines.watchdog``, which shuts the socket down when
  one passes; a read that fails after that is reported as the timeout it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import types
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

import httpx2
import msgspec

from ..transport import BODY_EXTENSION, AsyncResponseBody
from ..transport._common import ClientClosedError
from ._deadlines import DEFAULT_TIMEOUT, Timeout, Watch, shut_down, watchdog
from ._errors import (
    APIError,
    APITimeoutError,
    StreamDecodeError,
    StreamTruncatedError,
)
from ._http import (
    ATTEMPT_EXTENSION,
    RequestOptions,
    aclose_response,
    aensure_event_stream,
    aiter_body,
    asend,
    close_response,
    ensure_event_stream,
    iter_body,
    read_errors,
    send,
    transport_error,
)
from ._metrics import StreamMetrics
from ._protocol import ChunkStream, Face, ResponseEventStream, StreamCore, ends_in_done
from ._sse import DEFAULT_MAX_EVENT_SIZE, EventTooLargeError, ServerSentEvent, SSEDecoder
from ._tee import DEFAULT_TEE_BUFFER, async_tee, tee

__all__ = [
    "FINISHED_STATUSES",
    "InFlight",
    "BaseAsyncStream",
    "BaseStream",
    "ChunkStream",
    "aopen_stream",
    "open_stream",
    "ResponseEventStream",
]

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)
S = TypeVar("S", bound="_StreamBase[Any]")

_DRAIN_LIMIT = 64 * 1024  # what we read past [DONE] to keep the connection reusable
# How long past the terminal event the body's end may take to arrive: within it, the
# connection goes back to the pool; past it, it is dropped rather than waited for.
DRAIN_GRACE = 0.05
_TEXT_DELTA = "response.output_text.delta"
# A stored response with one of these statuses is over: no event will follow.
FINISHED_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete"})
# A core's response until its stream is bound: no byte is fed to it before then.
_UNBOUND = cast(httpx2.Response, None)


class _StreamBase(Generic[T]):
    response: httpx2.Response
    _core: StreamCore
    _watch: Watch
    _require_done: bool
    _resume: Any  # (response id, starting_after) -> the stream opened again; or None
    _finished: Any  # response id -> whether the response is over; or None

    def _setup(
        self,
        response: httpx2.Response | None,
        timeout: Timeout,
        require_done: bool,
        max_event_size: int,
        core: type[StreamCore],
        face: Face | None = None,
    ) -> None:
        """What the stream holds, none of which needs its response; then, given one,
        :meth:`_bind`. Without it, the stream is bound once its response is in (see
        :class:`InFlight`)."""
        self._core = core(_UNBOUND, max_event_size=max_event_size, accumulate=False, face=face)
        self._require_done = require_done
        self._cancelled = False
        self._metrics = StreamMetrics(0.0, 0.0)
        self._watch = Watch(timeout, 0.0, None)
        self._max_event_size = max_event_size
        self._max_resumes = 0
        self._response_id: str | None = None
        if response is not None:
            self._bind(response)

    def _bind(self, response: httpx2.Response) -> None:
        """Read ``response`` (its headers are in), and count its deadlines from when
        it was sent."""
        self.response = self._core.response = response
        headers_at = time.monotonic()
        # Taken, not read: an open stream keeps the times in its watch and metrics.
        sent_at, started_at, retries = response.extensions.pop(
            ATTEMPT_EXTENSION, (headers_at, headers_at, 0)
        )
        metrics = self._metrics
        metrics.sent_at, metrics.headers_at, metrics.retries = sent_at, headers_at, retries
        self._watch.begin(response, sent_at, started_at)

    def _twin(self) -> Self:
        """Another instance of this stream's class over the same state (the very same
        ``__dict__``), for the stream's generator to run on. A generator running on the
        stream itself would close a cycle (stream, generator, stream) that only the
        cyclic collector breaks: a stream left in the middle of an answer would keep
        its connection open until the collector happened to run. The generator lives in
        a slot (``_items``), outside the shared dict, so nothing the twin holds leads
        back to it: the stream and its generator go as soon as nothing holds them, and
        a loop that holds only the generator still has all it needs."""
        twin = object.__new__(type(self))
        twin.__dict__ = self.__dict__
        return twin

    def _resume_point(self, cause: BaseException | None = None) -> tuple[str, int | None] | None:
        """(response id, last sequence number handed over) to open a resumable stream
        again from, after its connection ended early (``cause``: the read's error) or
        went silent past ``idle``; None if it cannot be (its client was closed, say).
        With nothing handed over yet, a stream whose id is known (a retrieved one) opens
        again from where it first asked (None)."""
        if self._resume is None or self._cancelled or self._core.failure_handed:
            return None
        if isinstance(cause, ClientClosedError):
            return None
        expired = self._watch.expired
        if expired is not None and expired[0] != "idle":  # first_token and total are final
            return None
        if self._metrics.resumes >= self._max_resumes:
            return None
        accumulator = self._core.accumulator
        known = accumulator.response
        response_id = known.id if known is not None and known.id else self._response_id
        if response_id is None:
            return None
        return response_id, accumulator.last_sequence

    def _nothing_asked_for(self) -> bool:
        """No event has come, on a stream that can tell whether its response is over."""
        return self._finished is not None and self._core.events_received == 0

    def _ask_if_over(self, point: tuple[str, int | None] | None) -> str | None:
        """The id to ask whether the response is over, for a stream that ended cleanly
        before any event (``point``: where it would be resumed from, if it can be): a
        retrieved stream of a finished response has nothing after it, and is empty, as
        openai's is, resumes left or not. None: nothing to ask."""
        if self._cancelled or not self._nothing_asked_for():
            return None
        if point is not None:
            return point[0]
        return self._response_id if self._watch.expired is None else None

    def _switch_to(self, response: httpx2.Response) -> None:
        """Go on reading from ``response``, a resumed stream (the old one is closed)."""
        self.response = response
        core, watch = self._core, self._watch
        core.response = response
        core.sse = SSEDecoder(self._max_event_size)  # drop the cut-off event
        core.skip_through = core.accumulator.last_sequence  # type: ignore[attr-defined]
        watch.expired = None  # an idle deadline that passed: the new connection starts afresh
        watch.rebind(response)
        watch.resume(time.monotonic())
        watchdog.watch(watch)  # its entry was used up if a deadline passed
        self._metrics.resumes += 1

    def _raw_failure(self, error: APIError, delivered: int) -> BaseException:
        """The error to raise from :meth:`sse_events`: raw events are not accumulated,
        so it carries no partial result, only the count of events handed over."""
        raised: Any = self._core.fail(error)
        raised.partial = None
        raised.events_received = delivered
        return cast(BaseException, raised)

    @property
    def _responses(self) -> bool:
        return isinstance(self._core, ResponseEventStream)

    @property
    def metrics(self) -> StreamMetrics:
        """Timing and volume of this stream so far (see :class:`StreamMetrics`)."""
        usage = self._core.accumulator.usage
        if usage is not None:  # chat usage (either face's) or a Responses one
            tokens = getattr(usage, "completion_tokens", None)
            self._metrics.completion_tokens = usage.output_tokens if tokens is None else tokens
        return self._metrics

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Stop the stream from anywhere: another thread, task or a signal handler.

        The connection is shut down at once (so the server stops generating) and the
        consumer's loop ends quietly after the chunks already delivered; what arrived
        stays in :attr:`current_snapshot`. Unlike ``close()``, this never blocks and
        needs no event loop.
        """
        self._cancelled = True
        sock = self._watch.sock  # unwatch lets it go
        watchdog.unwatch(self._watch)
        if sock is not None:
            shut_down(sock)

    @property
    def events_received(self) -> int:
        return self._core.events_received

    def _failure(self, exc: BaseException) -> BaseException | None:
        """The error to raise for a failed read; None if the caller cancelled."""
        if self._cancelled:
            return None
        expired = self._watch.expired
        if expired is not None:
            name, seconds = expired
            error: APIError = APITimeoutError(self.response.request, deadline=name, seconds=seconds)
        else:
            error = transport_error(exc, self.response.request)
        return self._core.fail(error)

    def _cause(self, exc: BaseException) -> BaseException:
        """What a failed read's error is raised from: the transport's error, or, when a
        deadline passed, a read timeout, as httpx would raise it (the transport's error
        would only tell of the watchdog shutting the socket down, as if the peer had)."""
        if self._watch.expired is None:
            return exc
        return httpx2.ReadTimeout("timed out", request=self.response.request)

    def _end(self) -> None:
        if self._cancelled:
            return
        expired = self._watch.expired
        if expired is not None:
            name, seconds = expired
            error = APITimeoutError(self.response.request, deadline=name, seconds=seconds)
            raise self._core.fail(error)
        self._core.end(require_done=self._require_done)


class InFlight(Generic[S]):
    """Makes a stream while its request is in flight, and binds it to its response.

    Set as a request's ``while_waiting`` (``RequestOptions``; :func:`open_stream` does
    it): deltastream's transports call it once the request is sent, before they wait
    for the answer, and all a stream sets up without its response (its protocol core,
    accumulator, metrics, deadline watch and generator) is made while the server
    works. Made after the answer, it would run on a CPU just woken from the wait,
    where code runs about three times slower than in a loop, and the first chunk
    would wait for it. Through another transport nothing calls it, and :meth:`bind`
    makes the stream then. A retried request keeps the stream made for its first
    attempt: nothing has been fed to it.
    """

    __slots__ = ("_made", "_make")

    def __init__(self, make: Callable[[], S]) -> None:
        self._make: Callable[[], S] | None = make  # None once bound: one stream, ever
        self._made: S | None = None

    def __call__(self) -> None:
        if self._made is None and self._make is not None:
            self._made = self._make()

    def bind(self, response: httpx2.Response) -> S:
        """The stream, reading ``response``; it is no longer held here."""
        stream, make = self._made, self._make
        self._made = self._make = None
        if stream is None:
            assert make is not None, "bound twice"
            stream = make()
        stream._bind(response)
        return stream


def open_stream(http: httpx2.Client, request: RequestOptions, make: Callable[[], S]) -> S:
    """The stream ``make`` makes, reading the answer to ``request``: made while the
    request is in flight (:class:`InFlight`), bound once the answer is in and is an
    event stream (else ``ensure_event_stream`` raises)."""
    in_flight = InFlight(make)
    request.while_waiting = in_flight
    try:
        response = ensure_event_stream(send(http, request))
    finally:
        request.while_waiting = None  # a request built from it later makes no stream
    return in_flight.bind(response)


async def aopen_stream(
    http: httpx2.AsyncClient, request: RequestOptions, make: Callable[[], S]
) -> S:
    """The async twin of :func:`open_stream`."""
    in_flight = InFlight(make)
    request.while_waiting = in_flight
    try:
        response = await aensure_event_stream(await asend(http, request))
    finally:
        request.while_waiting = None
    return in_flight.bind(response)


class BaseStream(_StreamBase[T]):
    """A streamed response, iterated synchronously. Use it as a context manager."""

    __slots__ = ("_items",)  # see _StreamBase._twin

    def __init__(
        self,
        response: httpx2.Response | None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        require_done: bool = True,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        core: type[StreamCore] = ChunkStream,
        resume: Callable[[str, int | None], httpx2.Response] | None = None,
        max_resumes: int = 0,
        response_id: str | None = None,
        face: Face | None = None,
        finished: Callable[[str], bool] | None = None,
    ) -> None:
        """``resume(response_id, starting_after)`` (Responses streams) opens the stream
        again after its connection ends early or goes silent past ``idle``, at most
        ``max_resumes`` times; events already delivered are not delivered again.
        ``finished(response_id)`` says whether the response is over: a stream that
        ends cleanly before any event, of a finished response, had nothing after the
        cursor it asked from, and is empty, not cut. ``face`` presents the engine's
        items, errors and snapshots in another face's types (see ``_protocol.Face``).
        ``response`` None: the stream is made before its response is in, and
        :class:`InFlight` binds it."""
        self._setup(response, timeout, require_done, max_event_size, core, face)
        self._resume = resume
        self._finished = finished
        self._max_resumes, self._response_id = max_resumes, response_id
        self._items = self._twin()._iter_items()

    def __iter__(self) -> Iterator[T]:
        return self._items

    def __next__(self) -> T:
        return next(self._items)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection now. Safe to call more than once."""
        watchdog.unwatch(self._watch)
        # Run its cleanup now, not whenever it is collected. ValueError: it is running
        # (close() called from inside the loop); the response is closed below anyway.
        # (Not contextlib.suppress: three calls more on every stream's way out.)
        try:  # noqa: SIM105
            self._items.close()
        except ValueError:
            pass
        close_response(self.response)

    def until_done(self) -> Self:
        """Consume the rest of the stream."""
        for _ in self._items:
            pass
        return self

    def tee(self, n: int = 2, *, max_buffer: int = DEFAULT_TEE_BUFFER) -> list[Iterator[T]]:
        """``n`` independent iterators over this stream's chunks. Iterate only those from
        now on. An iterator that runs ``max_buffer`` chunks ahead of another raises
        ``TeeBufferFull`` (memory stays bounded)."""
        return tee(self._items, n, max_buffer)

    def sse_events(self) -> Iterator[ServerSentEvent]:
        """The raw server-sent events (event, data, id, retry), not decoded: for
        debugging and for servers that send their own kinds of events. Use it instead of
        iterating the stream. Deadlines hold as for typed items, and so does the end of
        stream rule (a body that ends without the stream's last event raises
        ``StreamTruncatedError``, unless ``require_done=False``); errors carry
        ``events_received``, the events handed over, and no partial result, since raw
        events are not accumulated."""
        watch, response = self._watch, self.response
        ends = _RawEnds(self._responses)
        decoder = SSEDecoder(self._core.sse.max_event_size)
        delivered = 0
        watchdog.watch(watch)
        try:
            for data in iter_body(response):
                events, too_large = _raw_events(decoder, data)
                if events:
                    watch.progress(time.monotonic())
                    watch.pause()
                    for sse in events:
                        ends.see(sse)
                        delivered += 1
                        yield sse
                    watch.resume(time.monotonic())
                if too_large is not None:
                    error = StreamDecodeError(
                        str(too_large), response=response, data=b"", too_large=True
                    )
                    raise self._raw_failure(error, delivered)
            ends.close(decoder)
        except read_errors() as exc:
            failure = self._failure(exc)
            if failure is None:
                return
            raise self._raw_failure(cast(APIError, failure), delivered) from self._cause(exc)
        finally:
            watchdog.unwatch(watch)
            response.close()
        if not ends.done and self._require_done and not self._cancelled:
            raise self._raw_failure(_truncated(response, ends, delivered), delivered)

    def text_deltas(self) -> Iterator[str]:
        """The content text of choice 0 (the output text of a Responses stream), delta
        by delta."""
        if self._responses:
            for event in self._items:
                event_: Any = event
                if event_.type == _TEXT_DELTA:
                    yield event_.delta
            return
        for chunk in self._items:
            chunk_: Any = chunk
            for choice in chunk_.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content

    def _iter_items(self) -> Generator[T, None, None]:
        core, watch, metrics = self._core, self._watch, self._metrics
        add = core.handed
        any_bytes = watch.timeout.comments_count
        watchdog.watch(watch)
        try:
            while True:
                body = iter_body(self.response)
                try:
                    for data in body:
                        items: Iterable[Any] = core.feed(data)
                        fed = len(core.fed)
                        now = time.monotonic()
                        if fed or any_bytes:
                            watch.progress(now)
                        metrics.on_read(now, len(data), fed)
                        del data  # not held while the next read waits
                        if fed:
                            watch.pause()
                            for item in items:
                                add(item)
                                yield item
                            watch.resume(time.monotonic())
                            if metrics.first_token_at is None and core.carries_token():
                                metrics.first_token_at = now
                            items = core.fed = ()  # not kept while the next read waits
                        if core.failure is not None:  # met after the items just handed over
                            raise core.fail(core.failure)
                        if core.done:
                            break
                except read_errors() as exc:
                    point = self._resume_point(exc)
                    if point is None:
                        error = self._failure(exc)
                        if error is None:
                            return
                        raise error from self._cause(exc)
                else:
                    if core.done:
                        if _body_open(self.response):
                            watch.drain_by(time.monotonic() + DRAIN_GRACE)
                            _drain(body)
                        return
                    point = self._resume_point()
                    response_id = self._ask_if_over(point)
                    if response_id is not None and _probe(self._finished, response_id):
                        return
                    if point is None:
                        self._end()
                        return
                finally:
                    # The exact type (httpx2's iter_bytes), not the ABC: a cheaper test.
                    if isinstance(body, types.GeneratorType):
                        body.close()
                close_response(self.response)
                assert self._resume is not None
                try:
                    response = self._resume(*point)
                except Exception as error:
                    raise core.fail(error) from error.__cause__
                self._switch_to(response)
        finally:
            watchdog.unwatch(watch)
            close_response(self.response)


class BaseAsyncStream(_StreamBase[T]):
    """A streamed response, iterated with ``async for``. Use ``async with``.

    Its own iterator, not an async generator as the sync stream's is: the event loop
    tracks every async generator it runs (a weak reference in a set, and a finalizer
    task for each one left unfinished), which ten thousand open streams pay for in
    memory. What the generator's ``finally`` did, :meth:`_finish` does: on the end,
    on an error, on ``close()``, and (``__del__``) for a stream left unfinished."""

    def __init__(
        self,
        response: httpx2.Response | None,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        require_done: bool = True,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        core: type[StreamCore] = ChunkStream,
        resume: Callable[[str, int | None], Awaitable[httpx2.Response]] | None = None,
        max_resumes: int = 0,
        response_id: str | None = None,
        face: Face | None = None,
        finished: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """See :class:`BaseStream`."""
        self._setup(response, timeout, require_done, max_event_size, core, face)
        self._resume = resume
        self._finished = finished
        self._max_resumes, self._response_id = max_resumes, response_id
        self._ready: Iterator[T] | None = None  # items of the last read not handed over
        self._hand = self._core.handed
        self._read_at = 0.0  # when that read came
        self._body: AsyncIterator[bytes] | None = None  # the response's, once reading
        self._over = False  # ended, failed or closed: nothing more comes

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        ready = self._ready
        if ready is not None:
            for item in ready:  # runs for every item: no call it can do without
                self._hand(item)
                return item
            self._ready = None
            self._handed_over()
        if self._over:
            raise StopAsyncIteration
        # The first item of the next read that brings any: what the sync stream's
        # _iter_items does as a generator, here in this one frame (an open stream
        # waits in it).
        core, watch, metrics = self._core, self._watch, self._metrics
        try:
            while True:
                if core.failure is not None:  # met after the items handed over
                    raise core.fail(core.failure)
                body = self._body
                if core.done:
                    if body is not None and _body_open(self.response):
                        watch.drain_by(time.monotonic() + DRAIN_GRACE)
                        await _adrain(body)
                    raise StopAsyncIteration
                if body is None:  # the first read (a resumed stream has its body)
                    watchdog.watch(watch)
                    body = self._body = aiter_body(self.response)
                try:
                    if isinstance(body, AsyncResponseBody):
                        # Waits here, in this frame: an open stream keeps no coroutine of
                        # its body's while it waits.
                        data = body.ready()
                        while data is None:
                            try:
                                await body.arrival()
                            except TimeoutError as exc:
                                raise httpx2.ReadTimeout("timed out reading the body") from exc
                            finally:
                                body.waited()
                            data = body.ready()
                        if not data:
                            raise StopAsyncIteration
                    else:
                        data = await anext(body)
                except StopAsyncIteration:
                    point = self._resume_point()
                    response_id = self._ask_if_over(point)
                    if response_id is not None and await _aprobe(self._finished, response_id):
                        raise
                    if point is None:
                        self._end()
                        raise
                    await self._resume_at(point)
                    continue
                except read_errors() as exc:
                    point = self._resume_point(exc)
                    if point is None:
                        error = self._failure(exc)
                        if error is None:
                            raise StopAsyncIteration from None
                        raise error from self._cause(exc)
                    await self._resume_at(point)
                    continue
                items: Iterable[T] = core.feed(data)
                fed = len(core.fed)
                now = time.monotonic()
                if fed or watch.timeout.comments_count:
                    watch.progress(now)
                metrics.on_read(now, len(data), fed)
                del data  # not held while the next read waits
                if fed:
                    watch.pause()
                    ready = iter(items)
                    self._read_at = now
                    for item in ready:  # none, if the face presents none of them
                        self._ready = ready
                        core.handed(item)
                        return item
                    self._handed_over()
        except BaseException:  # the end (StopAsyncIteration) included
            await self._finish()
            raise

    def __del__(self) -> None:
        # Left unfinished (a loop broken out of, no close()): let the connection go now,
        # as an async generator's finalizer would have.
        if getattr(self, "_over", True) or not hasattr(self, "response"):  # or never bound
            return
        self._over = True
        watchdog.unwatch(self._watch)
        _let_go(self.response)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connection now. Safe to call more than once."""
        self._ready = None
        await self._finish()
        await aclose_response(self.response)  # one _finish had let go already: a no-op

    aclose = close

    async def until_done(self) -> Self:
        async for _ in self:
            pass
        return self

    def tee(self, n: int = 2, *, max_buffer: int = DEFAULT_TEE_BUFFER) -> list[AsyncIterator[T]]:
        """See :meth:`BaseStream.tee`."""
        return async_tee(self, n, max_buffer)

    async def sse_events(self) -> AsyncIterator[ServerSentEvent]:
        """See :meth:`BaseStream.sse_events`."""
        watch, response = self._watch, self.response
        ends = _RawEnds(self._responses)
        decoder = SSEDecoder(self._core.sse.max_event_size)
        delivered = 0
        watchdog.watch(watch)
        try:
            async for data in aiter_body(response):
                events, too_large = _raw_events(decoder, data)
                if events:
                    watch.progress(time.monotonic())
                    watch.pause()
                    for sse in events:
                        ends.see(sse)
                        delivered += 1
                        yield sse
                    watch.resume(time.monotonic())
                if too_large is not None:
                    error = StreamDecodeError(
                        str(too_large), response=response, data=b"", too_large=True
                    )
                    raise self._raw_failure(error, delivered)
            ends.close(decoder)
        except read_errors() as exc:
            failure = self._failure(exc)
            if failure is None:
                return
            raise self._raw_failure(cast(APIError, failure), delivered) from self._cause(exc)
        finally:
            watchdog.unwatch(watch)
            await response.aclose()
        if not ends.done and self._require_done and not self._cancelled:
            raise self._raw_failure(_truncated(response, ends, delivered), delivered)

    async def text_deltas(self) -> AsyncIterator[str]:
        """See :meth:`BaseStream.text_deltas`."""
        if self._responses:
            async for event in self:
                event_: Any = event
                if event_.type == _TEXT_DELTA:
                    yield event_.delta
            return
        async for chunk in self:
            chunk_: Any = chunk
            for choice in chunk_.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content

    def _handed_over(self) -> None:
        """Every item of the last read is handed over: the consumer asks for more."""
        core, metrics = self._core, self._metrics
        self._watch.resume(time.monotonic())
        if metrics.first_token_at is None and core.carries_token():
            metrics.first_token_at = self._read_at
        core.fed = ()  # not kept while the next read waits

    async def _resume_at(self, point: tuple[str, int | None]) -> None:
        """Open the stream again from ``point``, the old response closed."""
        await self._drop_body()
        await aclose_response(self.response)
        assert self._resume is not None
        try:
            response = await self._resume(*point)
        except Exception as error:
            raise self._core.fail(error) from error.__cause__
        self._switch_to(response)  # watched again there
        self._body = aiter_body(response)

    async def _drop_body(self) -> None:
        body, self._body = self._body, None
        # An async generator (httpx2's aiter_bytes) is closed now, not by the loop later.
        # RuntimeError: it is running (close() from another task); the response's close
        # ends it.
        if isinstance(body, types.AsyncGeneratorType):
            with contextlib.suppress(RuntimeError):
                await body.aclose()

    async def _finish(self) -> None:
        """The stream is over: stop its deadlines, let its connection go."""
        if self._over:
            return
        self._over = True
        watchdog.unwatch(self._watch)
        await self._drop_body()
        await aclose_response(self.response)


def _let_go(response: httpx2.Response) -> None:
    """Close an abandoned async stream's response from ``__del__``, which cannot wait:
    at once on deltastream's transport, whose close never waits; else in a task of the
    running loop, as the loop does for an async generator left unfinished."""
    if isinstance(response.extensions.get(BODY_EXTENSION), AsyncResponseBody):
        closing = response.aclose()
        with contextlib.suppress(Exception):  # StopIteration: closed; nothing to raise to
            closing.send(None)
        return
    with contextlib.suppress(RuntimeError):  # no loop running: the connection goes with it
        asyncio.get_running_loop().create_task(response.aclose())


_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_object = msgspec.json.Decoder(dict[str, Any])


class _RawEnds:
    """Whether raw events included one that ends the stream: ``[DONE]``, an error
    report (``event: error``, or a top-level ``error`` object: the consumer has it), or
    (Responses) a terminal event, named in ``event:`` or in the data's ``type``."""

    __slots__ = ("done", "responses")

    def __init__(self, responses: bool) -> None:
        self.responses = responses
        self.done = False

    def close(self, decoder: SSEDecoder) -> None:
        """The body ended: a chat stream's cut-off final ``[DONE]`` ends it too."""
        if not self.done and not self.responses:
            self.done = ends_in_done(decoder)
        decoder.close()

    def see(self, sse: ServerSentEvent) -> None:
        if self.done:
            return
        raw = sse.raw_data
        if raw.startswith(b"[DONE]") or sse.event == "error":
            self.done = True
            return
        kind: object = sse.event
        if self.responses and kind in _TERMINAL:
            self.done = True
            return
        if raw.find(b'"type"') >= 0 or raw.find(b'"error"') >= 0:
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                data = _object.decode(raw)
                if self.responses:
                    self.done = data.get("type") in _TERMINAL or data.get("type") == "error"
                else:
                    self.done = bool(data.get("error"))

    @property
    def expected(self) -> str:
        return _TERMINAL_NAMES if self.responses else "data: [DONE]"


_TERMINAL_NAMES = "a terminal event (response.completed, .failed or .incomplete)"


def _raw_events(
    decoder: SSEDecoder, data: bytes
) -> tuple[list[ServerSentEvent], EventTooLargeError | None]:
    """The events ``data`` completed; an oversized one ends them, with those before it."""
    try:
        return decoder.feed(data), None
    except EventTooLargeError as exc:
        return exc.events, exc


def _truncated(response: httpx2.Response, ends: _RawEnds, delivered: int) -> APIError:
    return StreamTruncatedError(
        message=(
            f"The stream ended without {ends.expected} after {delivered} events; "
            "what arrived was handed over"
        ),
        request=response.request,
    )


def _body_open(response: httpx2.Response) -> bool:
    """Whether more of the body may come: from our transports, not once it has ended
    (then there is nothing to drain, nor a deadline to set for it)."""
    body = response.extensions.get(BODY_EXTENSION)
    return bool(getattr(body, "holds_connection", True))


def _drain(body: Iterator[bytes]) -> None:
    drained = 0
    try:
        for data in body:
            drained += len(data)
            if drained > _DRAIN_LIMIT:
                break
    except read_errors():
        pass  # the stream is complete; a broken tail only costs the connection


async def _adrain(body: AsyncIterator[bytes]) -> None:
    drained = 0
    try:
        async for data in body:
            drained += len(data)
            if drained > _DRAIN_LIMIT:
                break
    except read_errors():
        pass


def _probe(finished: Callable[[str], bool], response_id: str) -> bool:
    """Whether the response is over, as ``finished`` says; False if it cannot say (the
    stream is then resumed, whose errors tell what is wrong)."""
    try:
        return finished(response_id)
    except Exception:
        return False


async def _aprobe(finished: Callable[[str], Awaitable[bool]], response_id: str) -> bool:
    """See :func:`_probe`."""
    try:
        return await finished(response_id)
    except Exception:
        return False
