"""deltastream's own HTTP/1.1 transport for ``httpx2.AsyncClient`` (asyncio).

The async twin of ``_transport``: same framing (``_h1``), same pool rules. It talks to
asyncio directly through a ``Protocol`` instead of going through anyio streams and
httpcore: a read that finds data waiting costs no task switch, and a read that waits
costs one future. With a thousand slow streams open that is the difference between a
client that keeps up and one that adds latency (docs/benchmarks.md).

Under another event loop (trio) it hands every request to ``httpx2.AsyncHTTPTransport``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, cast

import httpx2

from ._h1 import ResponseStart, encode_chunk, request_head
from ._pool import Origin, Slots
from ._sync import (
    BODY_EXTENSION,
    READ_SIZE,
    BodyState,
    NetworkStream,
    StaleConnection,
    default_limits,
    origin_of,
    request_headers,
    shutdown_socket,
    timeouts_of,
)

__all__ = ["AsyncHTTP11Transport"]

_HIGH_WATER = 256 * 1024  # buffered and unread: stop reading from the socket
_TIMER_SLACK = 0.001


class _Channel(asyncio.BufferedProtocol):
    """One connection's bytes, handed to whoever awaits :meth:`read`.

    Reads go into a buffer of ``READ_SIZE`` and are handed over one read at a time: a
    quarter-megabyte batch (asyncio's own read size) decodes measurably slower per
    event than 64 KiB ones, as the batch and its objects no longer fit the CPU cache.
    The buffer is the pool's, shared by its connections: asyncio fills it and calls
    ``buffer_updated`` in one step, which copies the bytes out at once.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, buffer: memoryview) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = buffer
        self.chunks: collections.deque[bytes] = collections.deque()
        self.size = 0
        self.eof = False
        self.error: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.deadline: float | None = None  # of the wait in progress (loop time)
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio's.
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self._buffer[:nbytes])
        self.chunks.append(data)
        self.size += len(data)
        if self.size >= _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        reader = self.reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        writer = self.writer
        if writer is not None and not writer.done():
            writer.set_result(None)

    def _wake(self) -> None:
        for waiter in (self.reader, self.writer):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def read(self, time_limit: float | None) -> bytes:
        """What has arrived (waiting for something if nothing has); b"" at EOF."""
        if not self.chunks and not self.eof:
            await self._wait("reader", time_limit)
        chunks = self.chunks
        if not chunks:
            if self.error is not None:
                raise httpx2.ReadError(str(self.error) or type(self.error).__name__)
            return b""
        data = chunks.popleft()
        self.size -= len(data)
        if self.reading_paused and self.size < _HIGH_WATER and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    async def write(self, data: bytes, time_limit: float | None) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise httpx2.WriteError("The connection is closed")
        transport.write(data)
        if self.writing_paused:
            await self._wait("writer", time_limit)
            if self.writing_paused:
                raise httpx2.WriteError("The connection closed while sending")

    async def _wait(self, slot: str, time_limit: float | None) -> None:
        waiter: asyncio.Future[None] = self.loop.create_future()
        setattr(self, slot, waiter)
        if time_limit is not None:
            self._arm(self.loop.time() + time_limit)
        try:
            await waiter
        finally:
            setattr(self, slot, None)
            self.deadline = None

    def _arm(self, deadline: float) -> None:
        """Time out the current wait at ``deadline``. One timer per connection, moved
        only when it fires early: a stream waits once per event, and a timer per wait
        (made, cancelled, left in the loop's heap) is garbage the collector must chase
        across thousands of streams."""
        self.deadline = deadline
        timer = self._timer
        if timer is not None and timer.when() > deadline:
            timer.cancel()
            timer = None
        if timer is None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self.deadline
        if deadline is None:
            return  # not waiting: the next wait arms it again
        if deadline - self.loop.time() > _TIMER_SLACK:  # loops may run a timer early
            self._timer = self.loop.call_at(deadline, self._on_timer)
            return
        for waiter in (self.reader, self.writer):
            if waiter is not None and not waiter.done():
                waiter.set_exception(TimeoutError())

    def reusable(self) -> bool:
        transport = self.transport
        return (
            not self.eof
            and not self.chunks
            and transport is not None
            and not transport.is_closing()
        )

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            # abort() closes the socket on the loop's next turn; shutting it down now
            # lets the server know at once, even if the caller blocks the loop.
            with contextlib.suppress(OSError):
                _shutdown_socket(transport, socket.SHUT_RDWR)
            if self.loop.is_closed():
                _close_orphan(transport)
            else:
                transport.abort()


def _shutdown_socket(transport: asyncio.BaseTransport, how: int) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        shutdown_socket(sock, how)


def _close_orphan(transport: asyncio.Transport) -> None:
    """Close a transport whose event loop has been closed (a client used from one
    ``asyncio.run`` after another), which ``abort()`` cannot: it needs the loop. What
    the loop would have run next, closing the socket, is run here instead. These are
    asyncio internals (an SSL transport sits on a socket transport), so look them up
    defensively: at worst the socket was shut down above and the collector closes it."""
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None) or transport
    lost = getattr(inner, "_call_connection_lost", None)
    if callable(lost):
        with contextlib.suppress(Exception):
            lost(None)


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection:
    __slots__ = ("channel", "idle_since", "origin")

    def __init__(self, channel: _Channel, origin: Origin) -> None:
        self.channel = channel
        self.origin = origin
        self.idle_since = 0.0

    def close(self) -> None:
        self.channel.close()

    def looks_reusable(self, now: float, expiry: float | None) -> bool:
        if expiry is not None and now - self.idle_since > expiry:
            return False
        return self.channel.reusable()


class _Pool:
    """The asyncio twin of ``_transport._Pool``, for one event loop.

    Waiters are served in order: a freed connection (or, for another host, its slot)
    is handed to the first waiter directly, so a task that asks again at once cannot
    take it first. A waiter's future ends with the connection, or None for a slot.
    """

    def __init__(self, limits: httpx2.Limits, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._slots: Slots[_Connection] = Slots(limits)
        self._waiters: collections.deque[tuple[asyncio.Future[_Connection | None], Origin]]
        self._waiters = collections.deque()
        self.read_buffer = memoryview(bytearray(READ_SIZE))  # see _Channel

    async def acquire(self, origin: Origin, time_limit: float | None) -> _Connection | None:
        """An idle connection to ``origin``, or None after reserving a slot for a new
        one (the caller connects, then :meth:`release` or :meth:`failed`)."""
        if not self._waiters:
            conn = self._slots.take_idle(origin)
            if conn is not None:
                return conn
            if self._slots.reserve():
                return None
        return await self._wait(origin, time_limit)

    async def _wait(self, origin: Origin, time_limit: float | None) -> _Connection | None:
        waiter: asyncio.Future[_Connection | None] = self.loop.create_future()
        self._waiters.append((waiter, origin))
        timer = None if time_limit is None else self.loop.call_later(time_limit, _expire, waiter)
        try:
            return await waiter
        except TimeoutError:
            raise httpx2.PoolTimeout(
                f"No connection free in the pool after {time_limit} s "
                f"({self._slots.max} open, the limit)"
            ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed a connection or a slot, but leaving: pass it on.
                conn = waiter.result()
                if conn is None:
                    self.failed()
                else:
                    self.release(conn, reusable=True)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if not waiter.done():
                waiter.cancel()

    def _next_waiter(self) -> tuple[asyncio.Future[_Connection | None], Origin] | None:
        while self._waiters:
            waiter, origin = self._waiters.popleft()
            if not waiter.done():
                return waiter, origin
        return None

    def release(self, conn: _Connection, reusable: bool) -> None:
        reusable = reusable and conn.channel.reusable()
        waiting = self._next_waiter()
        if waiting is None:
            self._slots.put_back(conn, reusable)
            return
        waiter, origin = waiting
        waiter.set_result(self._slots.hand_over(conn, reusable, origin))

    def failed(self) -> None:
        """A reserved slot was not used (the connect failed): the next waiter gets it."""
        waiting = self._next_waiter()
        if waiting is not None:
            waiting[0].set_result(None)
        else:
            self._slots.unreserve()

    def close(self) -> None:
        self._slots.close_idle()


class _ResponseBody(httpx2.AsyncByteStream):
    def __init__(self, state: BodyState[_Connection], request: httpx2.Request) -> None:
        self._state = state
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        state = self._state
        first = state.take_first()
        if first:
            yield first
        conn = state.conn
        if conn is None:
            return
        read = conn.channel.read
        try:
            timeout = timeouts_of(self._request).get("read")
            while True:
                try:
                    data = await read(timeout)
                except TimeoutError as exc:
                    raise httpx2.ReadTimeout("timed out reading the body") from exc
                body, ended = state.step(data)
                if body:
                    yield body
                if ended:
                    return
        except BaseException:
            state.finish(reusable=False)
            raise

    async def aclose(self) -> None:
        self._state.close()

    def shutdown(self, how: int) -> None:
        """See ``_transport._ResponseBody.shutdown``: only while this body holds the
        connection. Safe from another thread: it only shuts the socket down, and the
        event loop sees the end of the stream."""
        conn = self._state.conn
        transport = conn.channel.transport if conn is not None else None
        if transport is not None:
            _shutdown_socket(transport, how)


class AsyncHTTP11Transport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` async transport speaking HTTP/1.1 over asyncio."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        limits: httpx2.Limits | None = None,
        socket_options: Iterable[tuple[int, int, int]] | None = None,
    ) -> None:
        self._limits = limits or default_limits()
        self._options: dict[str, Any] = {
            "verify": verify,
            "cert": cert,
            "trust_env": trust_env,
            "limits": self._limits,
            "socket_options": socket_options,
        }
        self._ssl = httpx2.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        self._socket_options = list(socket_options or ())
        self._pool: _Pool | None = None
        self._fallback: httpx2.AsyncHTTPTransport | None = None

    def _pool_for(self, loop: asyncio.AbstractEventLoop) -> _Pool:
        pool = self._pool
        if pool is None or pool.loop is not loop:
            # A client used from a new event loop: the old loop's connections are dead.
            if pool is not None:
                pool.close()
            self._pool = pool = _Pool(self._limits, loop)
        return pool

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): httpx2's own transport
            if self._fallback is None:
                self._fallback = httpx2.AsyncHTTPTransport(**self._options)
            return await self._fallback.handle_async_request(request)
        pool = self._pool_for(loop)
        origin = origin_of(request.url)
        timeouts = timeouts_of(request)
        # A request goes out again on a stale connection only if its body can be re-sent.
        replayable = isinstance(request.stream, httpx2.ByteStream)
        while True:
            conn = await pool.acquire(origin, timeouts.get("pool"))
            if conn is None:
                conn = await self._connect(pool, loop, origin, timeouts)
                return await self._exchange(pool, conn, request, reused=False)
            try:
                return await self._exchange(pool, conn, request, reused=replayable)
            except StaleConnection:
                continue  # the server had closed it: take another one

    async def _connect(
        self,
        pool: _Pool,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        timeouts: dict[str, float | None],
    ) -> _Connection:
        scheme, raw_host, port = origin
        host = raw_host.decode("ascii")
        channel = _Channel(loop, pool.read_buffer)
        tls = self._ssl if scheme == b"https" else None
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                await loop.create_connection(
                    lambda: channel, host, port, ssl=tls, server_hostname=host if tls else None
                )
            sock = channel.transport.get_extra_info("socket") if channel.transport else None
            for option in self._socket_options:
                if sock is not None:
                    sock.setsockopt(*option)
        except BaseException as exc:
            pool.failed()
            channel.close()
            if isinstance(exc, TimeoutError):
                raise httpx2.ConnectTimeout("timed out connecting") from exc
            if isinstance(exc, OSError):  # ssl.SSLError is one
                raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
            raise
        return _Connection(channel, origin)

    async def _exchange(
        self, pool: _Pool, conn: _Connection, request: httpx2.Request, reused: bool
    ) -> httpx2.Response:
        timeouts = timeouts_of(request)
        method = request.method.encode("ascii")
        headers = request_headers(request)
        channel = conn.channel
        start = ResponseStart(method)
        try:
            await self._send(channel, request, method, headers, timeouts.get("write"), reused)
            read_timeout = timeouts.get("read")
            while True:
                try:
                    data = await channel.read(read_timeout)
                except TimeoutError as exc:
                    raise httpx2.ReadTimeout("timed out waiting for the response") from exc
                except httpx2.ReadError as exc:
                    if reused and not start.received:
                        raise StaleConnection from exc
                    raise
                if not data:
                    if reused and not start.received:
                        raise StaleConnection
                    raise httpx2.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                started = start.feed(data)
                if started is not None:
                    break
        except BaseException:
            pool.release(conn, reusable=False)
            raise
        head, decoder, first = started
        reusable = start.reusable(head, headers)
        state = BodyState(conn, decoder, first, reusable, pool.release)
        if decoder.complete:  # nothing more to read: the connection is free now
            state.finish(reusable and not decoder.leftover)
        transport = channel.transport
        sock = transport.get_extra_info("socket") if transport else None
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        stream = _ResponseBody(state, request)
        return httpx2.Response(
            head.status,
            headers=head.headers,
            stream=stream,
            extensions={
                "http_version": head.http_version,
                "reason_phrase": head.reason,
                "network_stream": NetworkStream(sock, ssl_object),
                BODY_EXTENSION: stream,
            },
        )

    async def _send(
        self,
        channel: _Channel,
        request: httpx2.Request,
        method: bytes,
        headers: list[tuple[bytes, bytes]],
        time_limit: float | None,
        reused: bool,
    ) -> None:
        head = request_head(method, request.url.raw_path, headers)
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        body = request.stream
        try:
            if isinstance(body, httpx2.ByteStream) and not chunked:
                await channel.write(head + b"".join(body), time_limit)
            else:
                await channel.write(head, time_limit)
                assert isinstance(body, AsyncIterable)
                async for part in body:
                    if part:
                        await channel.write(encode_chunk(part) if chunked else part, time_limit)
                if chunked:
                    await channel.write(b"0\r\n\r\n", time_limit)
        except TimeoutError as exc:
            raise httpx2.WriteTimeout("timed out sending the request") from exc
        except httpx2.WriteError as exc:
            if reused:
                raise StaleConnection from exc
            raise

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._fallback is not None:
            await self._fallback.aclose()
