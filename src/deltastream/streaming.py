"""``Stream`` and ``AsyncStream``: the response body as typed chunks.

All protocol work happens in :class:`ChunkStream`, which is pure (bytes in, chunks out):
SSE decoding, ``[DONE]``, in-band errors, typed decoding and accumulation. The two
shells only pull bytes from the HTTP response and decide what happens to the
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

import contextlib
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import httpx2

from ._deadlines import DEFAULT_TIMEOUT, Timeout, Watch, watchdog
from ._decode import EventDecodeError, decode_chat_chunk, in_band_error
from ._events import EventBuilder, StreamEvent
from ._http import transport_error
from ._metrics import StreamMetrics
from ._tee import DEFAULT_TEE_BUFFER, async_tee, tee
from .accumulate import ChatAccumulator
from .errors import (
    APIError,
    APIStreamError,
    APITimeoutError,
    StreamDecodeError,
    StreamTruncatedError,
)
from .sse import DEFAULT_MAX_EVENT_SIZE, EventTooLargeError, ServerSentEvent, SSEDecoder
from .types.chat import ChatCompletion, ChatCompletionChunk

__all__ = ["AsyncStream", "ChunkStream", "Stream"]

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

_DRAIN_LIMIT = 64 * 1024  # what we read past [DONE] to keep the connection reusable


class ChunkStream:
    """Pure protocol state of one chat stream: feed it body bytes, get chunks back.

    By default each chunk is accumulated as it is decoded. The stream shells pass
    ``accumulate=False`` and accumulate each chunk as they hand it over instead, so that
    snapshots match what the caller has seen; chunks decoded before an error are still
    accumulated before the error is raised, so ``.partial`` holds everything received.
    """

    __slots__ = ("accumulate", "accumulator", "done", "events_received", "response", "sse")

    def __init__(
        self,
        response: httpx2.Response,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        accumulate: bool = True,
    ):
        self.response = response
        self.sse = SSEDecoder(max_event_size)
        self.accumulator = ChatAccumulator()
        self.accumulate = accumulate
        self.done = False
        self.events_received = 0

    def feed(self, data: bytes) -> list[ChatCompletionChunk]:
        try:
            events = self.sse.feed(data)
        except EventTooLargeError as exc:
            # Keep what the chunk completed before the oversized event, then fail.
            for chunk in self._chunks(exc.events):
                if not self.accumulate:
                    self.accumulator.add(chunk)
            error = StreamDecodeError(str(exc), response=self.response, data=b"")
            raise self.fail(error) from None
        return self._chunks(events)

    def _chunks(self, events: list[ServerSentEvent]) -> list[ChatCompletionChunk]:
        chunks: list[ChatCompletionChunk] = []
        add = self.accumulator.add
        accumulate = self.accumulate
        try:
            for event in events:
                raw = event.raw_data
                if raw == b"[DONE]":
                    self.done = True
                    break
                if event.event == "error" or b'"error"' in raw:
                    self._check_error(event)
                try:
                    chunk = decode_chat_chunk(raw)
                except EventDecodeError as exc:
                    error = StreamDecodeError(str(exc), response=self.response, data=exc.data)
                    raise error from None
                self.events_received += 1
                if accumulate:
                    add(chunk)
                chunks.append(chunk)
        except APIError as error:
            if not accumulate:
                for chunk in chunks:  # received, though never handed over
                    add(chunk)
            raise self.fail(error) from None
        return chunks

    def end(self, *, require_done: bool = True) -> None:
        """The body ended. Raise if the stream never said it was done."""
        self.sse.close()
        if not self.done and require_done:
            raise self.fail(
                StreamTruncatedError(
                    message=(
                        "The stream ended without data: [DONE] after "
                        f"{self.events_received} events; what arrived is in .partial"
                    ),
                    request=self.response.request,
                )
            )

    def fail(self, error: E) -> E:
        """Attach what was received so far to an error about to be raised."""
        if isinstance(error, APIError):
            error.partial = self.accumulator.snapshot()
            error.events_received = self.events_received
        return error

    def _check_error(self, event: ServerSentEvent) -> None:
        payload = in_band_error(event.raw_data)
        if payload is None and event.event != "error":
            return
        body: object = payload if payload is not None else event.data
        inner = payload.get("error") if payload is not None else None
        message = inner.get("message") if isinstance(inner, dict) else None
        if not isinstance(message, str) or not message:
            message = f"The server reported an error in the stream: {event.data[:500]}"
        raise APIStreamError(message, self.response.request, body=body)


class _StreamBase(Generic[T]):
    response: httpx2.Response
    _core: ChunkStream
    _watch: Watch
    _require_done: bool

    def _setup(
        self,
        response: httpx2.Response,
        timeout: Timeout,
        require_done: bool,
        max_event_size: int,
    ) -> None:
        self.response = response
        self._core = ChunkStream(response, max_event_size=max_event_size, accumulate=False)
        self._require_done = require_done
        self._cancelled = False
        headers_at = time.monotonic()
        sent_at = response.extensions.get("sent_at", headers_at)
        self._metrics = StreamMetrics(
            sent_at, headers_at, retries=response.extensions.get("retries", 0)
        )
        self._watch = Watch(timeout, sent_at, _socket_of(response))
        if timeout.comments_count:
            self._watch.first_at = sent_at  # any bytes count: only idle/total apply
        # The body's reads get a generous backstop; the watchdog keeps the real time.
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            timeouts["read"] = timeout.body_read()

    @property
    def current_snapshot(self) -> ChatCompletion:
        """The completion accumulated from the chunks received so far."""
        return self._core.accumulator.snapshot()

    @property
    def metrics(self) -> StreamMetrics:
        """Timing and volume of this stream so far (see :class:`StreamMetrics`)."""
        usage = self._core.accumulator.usage
        if usage is not None:
            self._metrics.completion_tokens = usage.completion_tokens
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
        watchdog.unwatch(self._watch)
        sock = self._watch.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    @property
    def events_received(self) -> int:
        return self._core.events_received

    def _failure(self, exc: httpx2.TransportError) -> APIError | None:
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

    def _end(self) -> None:
        if self._cancelled:
            return
        expired = self._watch.expired
        if expired is not None:
            name, seconds = expired
            error = APITimeoutError(self.response.request, deadline=name, seconds=seconds)
            raise self._core.fail(error)
        self._core.end(require_done=self._require_done)


class Stream(_StreamBase[T]):
    """A streamed response, iterated synchronously. Use it as a context manager."""

    def __init__(
        self,
        response: httpx2.Response,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        require_done: bool = True,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self._setup(response, timeout, require_done, max_event_size)
        self._iterator = self._iter_chunks()

    def __iter__(self) -> Iterator[T]:
        return self._iterator

    def __next__(self) -> T:
        return next(self._iterator)

    def __enter__(self) -> Stream[T]:
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
        with contextlib.suppress(ValueError):
            self._iterator.close()
        self.response.close()

    def until_done(self) -> Stream[T]:
        """Consume the rest of the stream."""
        for _ in self._iterator:
            pass
        return self

    def get_final_completion(self) -> ChatCompletion:
        """Consume the rest of the stream and return the accumulated completion."""
        self.until_done()
        return self._core.accumulator.snapshot()

    def tee(self, n: int = 2, *, max_buffer: int = DEFAULT_TEE_BUFFER) -> list[Iterator[T]]:
        """``n`` independent iterators over this stream's chunks. Iterate only those from
        now on. An iterator that runs ``max_buffer`` chunks ahead of another raises
        ``TeeBufferFull`` (memory stays bounded)."""
        return tee(self._iterator, n, max_buffer)

    def events(self) -> Iterator[StreamEvent]:
        """Higher-level events: content and refusal deltas with their snapshots, tool-call
        argument deltas (with lazily parsed partial JSON) and completions, finish
        reasons, usage."""
        builder = EventBuilder(self._core.accumulator)
        for chunk in self._iterator:
            yield from builder.events(cast(ChatCompletionChunk, chunk))
        yield from builder.finish()

    def text_deltas(self) -> Iterator[str]:
        """The content text of choice 0, delta by delta."""
        for chunk in self._iterator:
            chunk_: Any = chunk
            for choice in chunk_.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content

    def _iter_chunks(self) -> Generator[T, None, None]:
        core, watch, response, metrics = self._core, self._watch, self.response, self._metrics
        add = core.accumulator.add
        any_bytes = watch.timeout.comments_count
        body = response.iter_bytes()
        watchdog.watch(watch)
        try:
            try:
                for data in body:
                    items: list[Any] = core.feed(data)
                    now = time.monotonic()
                    if items or any_bytes:
                        watch.progress(now)
                    metrics.on_read(now, len(data), len(items))
                    if metrics.first_token_at is None and _carries_token(items):
                        metrics.first_token_at = now
                    for item in items:
                        add(item)
                        yield item
                    if core.done:
                        break
                else:
                    self._end()
                    return
            except httpx2.TransportError as exc:
                error = self._failure(exc)
                if error is None:
                    return
                raise error from exc
            watchdog.unwatch(watch)
            _drain(body)
        finally:
            watchdog.unwatch(watch)
            if isinstance(body, Generator):
                body.close()
            response.close()


class AsyncStream(_StreamBase[T]):
    """A streamed response, iterated with ``async for``. Use ``async with``."""

    def __init__(
        self,
        response: httpx2.Response,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        require_done: bool = True,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self._setup(response, timeout, require_done, max_event_size)
        self._iterator = self._iter_chunks()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterator

    async def __anext__(self) -> T:
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncStream[T]:
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
        watchdog.unwatch(self._watch)
        # Run its cleanup now: an async generator left to the garbage collector is closed
        # later by the event loop, racing with whatever runs then. RuntimeError: it is
        # running (close() called from another task); the response is closed below.
        with contextlib.suppress(RuntimeError):
            await self._iterator.aclose()
        await self.response.aclose()

    aclose = close

    async def until_done(self) -> AsyncStream[T]:
        async for _ in self._iterator:
            pass
        return self

    async def get_final_completion(self) -> ChatCompletion:
        await self.until_done()
        return self._core.accumulator.snapshot()

    def tee(self, n: int = 2, *, max_buffer: int = DEFAULT_TEE_BUFFER) -> list[AsyncIterator[T]]:
        """See :meth:`Stream.tee`."""
        return async_tee(self._iterator, n, max_buffer)

    async def events(self) -> AsyncIterator[StreamEvent]:
        """See :meth:`Stream.events`."""
        builder = EventBuilder(self._core.accumulator)
        async for chunk in self._iterator:
            for event in builder.events(cast(ChatCompletionChunk, chunk)):
                yield event
        for event in builder.finish():
            yield event

    async def text_deltas(self) -> AsyncIterator[str]:
        async for chunk in self._iterator:
            chunk_: Any = chunk
            for choice in chunk_.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content

    async def _iter_chunks(self) -> AsyncGenerator[T, None]:
        core, watch, response, metrics = self._core, self._watch, self.response, self._metrics
        add = core.accumulator.add
        any_bytes = watch.timeout.comments_count
        body = response.aiter_bytes()
        watchdog.watch(watch)
        try:
            try:
                async for data in body:
                    items: list[Any] = core.feed(data)
                    now = time.monotonic()
                    if items or any_bytes:
                        watch.progress(now)
                    metrics.on_read(now, len(data), len(items))
                    if metrics.first_token_at is None and _carries_token(items):
                        metrics.first_token_at = now
                    for item in items:
                        add(item)
                        yield item
                    if core.done:
                        break
                else:
                    self._end()
                    return
            except httpx2.TransportError as exc:
                error = self._failure(exc)
                if error is None:
                    return
                raise error from exc
            watchdog.unwatch(watch)
            await _adrain(body)
        finally:
            watchdog.unwatch(watch)
            if isinstance(body, AsyncGenerator):
                await body.aclose()
            await response.aclose()


def _carries_token(chunks: list[Any]) -> bool:
    """Whether any of these chunks carries generated output (for time to first token)."""
    for chunk in chunks:
        for choice in chunk.choices:
            d = choice.delta
            if d.content or d.refusal or d.reasoning_content or d.reasoning or d.tool_calls:
                return True
    return False


def _socket_of(response: httpx2.Response) -> Any:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None  # e.g. MockTransport: nothing to shut down
    sock = stream.get_extra_info("socket")
    # asyncio hands out a TransportSocket wrapper: anything that can shut down will do.
    return sock if hasattr(sock, "shutdown") else None


def _drain(body: Iterator[bytes]) -> None:
    drained = 0
    try:
        for data in body:
            drained += len(data)
            if drained > _DRAIN_LIMIT:
                break
    except httpx2.TransportError:
        pass  # the stream is complete; a broken tail only costs the connection


async def _adrain(body: AsyncIterator[bytes]) -> None:
    drained = 0
    try:
        async for data in body:
            drained += len(data)
            if drained > _DRAIN_LIMIT:
                break
    except httpx2.TransportError:
        pass
