"""deltastream's own HTTP/1.1 transport for ``httpx2.AsyncClient`` (asyncio).

The async twin of ``_sync``: same framing (``_h1``), same pool rules. It talks to
asyncio directly through a ``Protocol`` (``_channel``) instead of going through anyio
streams and httpcore: a read that finds data waiting costs no task switch, and a read that waits
costs one future. With a thousand slow streams open that is the difference between a
client that keeps up and one that adds latency (docs/benchmarks.md).

Connections are opened by ``_dial.adial`` (Happy Eyeballs, a connect deadline that
asks the socket before it fails), then handed to the loop with the TLS context of
``_tls``. Under another event loop (trio) it hands every request to
``httpx2.AsyncHTTPTransport``.

While a request body waits for the socket to drain, an answer from the server stops
the sending (RFC 9112 9.5): a server that refuses a body answers before reading it,
and its answer is what the caller gets.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import httpx2

from ._channel import Channel, shutdown_transport
from ._common import (
    READ_SIZE,
    BodyState,
    NetworkStream,
    StaleConnection,
    default_limits,
    make_response,
    may_resend,
    nothing_came,
    outgoing,
    readable_now,
    request_origin,
    timeouts_of,
    while_waiting,
    whole_body,
)
from ._dial import adial, aresolve
from ._h1 import ResponseStart, encode_chunk
from ._pool import Origin, Slots
from ._proxy import ProxyRoute, TunnelReply
from ._tls import TLSConfig

__all__ = ["AsyncHTTP11Transport", "AsyncResponseBody"]


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection:
    __slots__ = (
        "__weakref__",
        "_network_stream",
        "channel",
        "idle_since",
        "interrupted",
        "origin",
    )

    def __init__(self, channel: Channel, origin: Origin) -> None:
        self.channel = channel
        self.origin = origin
        self.idle_since = 0.0
        self.interrupted = False
        self._network_stream: NetworkStream | None = None

    @property
    def network_stream(self) -> NetworkStream:
        """One per connection, not per response; made once the channel is connected."""
        stream = self._network_stream
        if stream is None:
            transport = self.channel.transport
            sock = transport.get_extra_info("socket") if transport else None
            ssl_object = transport.get_extra_info("ssl_object") if transport else None
            stream = self._network_stream = NetworkStream(sock, ssl_object)
        return stream

    def close(self) -> None:
        self.channel.close()

    def interrupt(self) -> None:
        self.interrupted = True
        self.channel.close()  # the task reading it wakes to a closed connection

    def looks_reusable(self, ask_kernel: bool) -> bool:
        # The channel knows what the event loop has read; a loop that has not run
        # since the server closed the connection (or said something) has not.
        channel = self.channel
        if not channel.reusable():
            return False
        if not ask_kernel:
            return True
        try:
            return not readable_now(self.network_stream.get_extra_info("socket"))
        except (OSError, ValueError, TypeError):
            return False


class _Pool:
    """The asyncio twin of ``_sync._Pool``, for one event loop.

    Waiters are served in order: a freed connection (or, for another host, its slot)
    is handed to the first waiter directly, so a task that asks again at once cannot
    take it first. A waiter's future ends with the connection, or None for a slot.
    """

    def __init__(self, limits: httpx2.Limits, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._slots: Slots[_Connection] = Slots(limits)
        self._waiters: collections.deque[tuple[asyncio.Future[_Connection | None], Origin]]
        self._waiters = collections.deque()
        self.read_buffer = memoryview(bytearray(READ_SIZE))  # see Channel

    async def acquire(
        self, origin: Origin, time_limit: float | None, resendable: bool
    ) -> _Connection | None:
        """An idle connection to ``origin``, or None after reserving a slot for a new
        one (the caller connects, then :meth:`release` or :meth:`failed`).
        ``resendable``: see ``Slots.take_idle``."""
        if not self._waiters:
            conn = self._slots.take_idle(origin, resendable)
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

    def adopt(self, conn: _Connection) -> _Connection:
        self._slots.adopt(conn)
        return conn

    def close(self) -> None:
        """Close the idle connections and end those in use; those of another event loop
        still running (a client used from two) are left to it, as ending them from here
        would not be safe."""
        try:
            mine = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            mine = False
        if mine or self.loop.is_closed():
            self._slots.close()
        else:
            self._slots.close_idle()


class _ResponseBody(BodyState[_Connection], httpx2.AsyncByteStream):
    """The body's bytes, a read at a time: its state between reads (``BodyState``)
    and its iterator in one object. Its own iterator, not an async generator, and it
    waits on the channel without a coroutine of the channel's. A reader with a frame
    of its own to wait in (an engine stream) can do without this one's too:
    :meth:`ready`, :meth:`arrival` and :meth:`waited` are ``__anext__`` in parts."""

    __slots__ = ("_read_timeout",)  # set at the first wait; no instance dict: see _sync

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        data = self.ready()
        while data is None:
            try:
                await self.arrival()
            except TimeoutError as exc:
                self.finish(reusable=False)
                raise httpx2.ReadTimeout("timed out reading the body") from exc
            except BaseException as exc:
                raise self.broken(exc)  # noqa: B904 - exc itself, or an error caused by it
            finally:
                self.waited()
            data = self.ready()
        if data:
            return data
        raise StopAsyncIteration

    def ready(self) -> bytes | None:
        """The body's next bytes if they are here, b"" at its end; None when they are
        to be waited for: await :meth:`arrival`, then :meth:`waited`, then ask again."""
        if self.first and (first := self.take_first()):  # a call only while there is some
            return first
        while (conn := self.conn) is not None:
            channel = conn.channel
            if not channel.chunks and not channel.eof:
                return None
            try:
                body = self.step(channel.take())
            except BaseException as exc:
                raise self.broken(exc)  # noqa: B904 - exc itself, or an error caused by it
            if body:
                return body  # if it ended the body, step() gave the connection back
        if (early := self.closed_early()) is not None:
            raise early
        return b""

    def arrival(self) -> asyncio.Future[None]:
        """What to await when :meth:`ready` said to wait; it fails with ``TimeoutError``
        past the read timeout (an abandoned wait leaves the connection unusable: the
        caller closes the body)."""
        if not self.timed:
            self._read_timeout = timeouts_of(self.request).get("read")
            self.timed = True
        conn = self.conn
        assert conn is not None  # ready() said to wait: the body has its connection
        return conn.channel.arrival(self._read_timeout)  # Channel.read, inline

    def waited(self) -> None:
        """After awaiting :meth:`arrival`, however that ended."""
        conn = self.conn
        if conn is not None:
            conn.channel.waited()

    async def aclose(self) -> None:
        # Never waits (nor ever may): an abandoned stream closes it from __del__.
        self.close()

    @property
    def holds_connection(self) -> bool:
        """Whether the body still has its connection (else it ended, or was closed:
        either way nothing more will be read)."""
        return self.conn is not None

    def shutdown(self, how: int) -> None:
        """See ``_sync._ResponseBody.shutdown``: only while this body holds the
        connection. Safe from another thread: it only shuts the socket down, and the
        event loop sees the end of the stream."""
        conn = self.conn
        transport = conn.channel.transport if conn is not None else None
        if transport is not None:
            shutdown_transport(transport, how)


AsyncResponseBody = _ResponseBody  # the body's type, for the engine to know it by


class AsyncHTTP11Transport(httpx2.AsyncBaseTransport):
    """An ``httpx2`` async transport speaking HTTP/1.1 over asyncio. ``proxy``: as for
    ``HTTP11Transport``."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        limits: httpx2.Limits | None = None,
        socket_options: Iterable[tuple[int, int, int]] | None = None,
        proxy: httpx2.Proxy | httpx2.URL | str | None = None,
    ) -> None:
        self._limits = limits or default_limits()
        self._options: dict[str, Any] = {
            "verify": verify,
            "cert": cert,
            "trust_env": trust_env,
            "limits": self._limits,
            "socket_options": socket_options,
            "proxy": proxy,
        }
        self._tls = TLSConfig(verify, cert, trust_env)
        self._socket_options = list(socket_options or ())
        self._proxy = None if proxy is None else ProxyRoute(proxy)
        self._pool: _Pool | None = None
        self._fallback: httpx2.AsyncHTTPTransport | None = None

    def _pool_for(self, loop: asyncio.AbstractEventLoop) -> _Pool:
        pool = self._pool
        if pool is None or pool.loop is not loop:
            # A client used from a new event loop: the old loop's idle connections go
            # (those it still uses are its own: see _Pool.close).
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
        origin = request_origin(request)
        timeouts = timeouts_of(request)
        resend = may_resend(request)
        while True:
            conn = await pool.acquire(origin, timeouts.get("pool"), resend)
            if conn is None:
                conn = await self._connect(pool, loop, origin, timeouts)
                return await self._exchange(pool, conn, request, timeouts, resend=False)
            try:
                return await self._exchange(pool, conn, request, timeouts, resend=resend)
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
        timeout = timeouts.get("connect")
        proxy = self._proxy
        channel = Channel(loop, pool.read_buffer)
        sock: socket.socket | None = None
        try:
            if proxy is None:
                addresses = await aresolve(loop, host, port, timeout)
            else:
                addresses = await aresolve(loop, proxy.host, proxy.port, timeout)
            sock = await adial(loop, addresses, timeout, self._socket_options)
            if scheme == b"https" and proxy is None:
                async with asyncio.timeout(timeout):
                    await loop.create_connection(
                        lambda: channel, sock=sock, ssl=self._tls.context(), server_hostname=host
                    )
            else:
                await loop.create_connection(lambda: channel, sock=sock)
                if scheme == b"https" and proxy is not None:
                    await _open_tunnel(channel, proxy, origin, timeouts)
                    await self._start_tls(loop, channel, host, timeout)
            # Set before connecting (buffer sizes count then), and again now: the loop
            # sets TCP_NODELAY on the sockets it takes, and the caller's choice wins.
            for option in self._socket_options:
                sock.setsockopt(*option)
        except BaseException as exc:
            pool.failed()
            channel.close()
            if sock is not None and channel.transport is None:
                sock.close()
            if isinstance(exc, TimeoutError):
                raise httpx2.ConnectTimeout(str(exc) or "timed out connecting") from exc
            if isinstance(exc, OSError):  # ssl.SSLError is one
                raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
            raise
        return pool.adopt(_Connection(channel, origin))

    async def _start_tls(
        self,
        loop: asyncio.AbstractEventLoop,
        channel: Channel,
        host: str,
        time_limit: float | None,
    ) -> None:
        """TLS to the origin, inside the tunnel that ``channel`` carries."""
        transport = channel.transport
        assert transport is not None
        async with asyncio.timeout(time_limit):
            tls = await loop.start_tls(
                transport, channel, self._tls.context(), server_hostname=host
            )
        if tls is None:
            raise httpx2.ConnectError("The connection closed during the TLS handshake")
        channel.transport = tls

    async def _exchange(
        self,
        pool: _Pool,
        conn: _Connection,
        request: httpx2.Request,
        timeouts: dict[str, float | None],
        resend: bool,
    ) -> httpx2.Response:
        """See ``HTTP11Transport._exchange``."""
        forward = self._proxy.forward if self._proxy and conn.origin[0] == b"http" else None
        channel = conn.channel
        send_error: httpx2.TransportError | None = None
        try:
            method, head_bytes, chunked, asks_close = outgoing(request, forward)
            start = ResponseStart(method)
            try:
                await _send(channel, request, head_bytes, chunked, timeouts.get("write"))
            except (httpx2.WriteError, httpx2.WriteTimeout) as exc:
                if not channel.answered():
                    if resend and isinstance(exc, httpx2.WriteError):
                        raise StaleConnection from exc
                    raise
                send_error = exc  # an answer (or the end) is waiting: read it first
            while_waiting(request)
            read_timeout = timeouts.get("read")
            while True:
                try:
                    data = await channel.read(read_timeout)
                except TimeoutError as exc:
                    raise httpx2.ReadTimeout("timed out waiting for the response") from exc
                except httpx2.ReadError as exc:
                    if not start.received:
                        nothing_came(resend, send_error, exc)
                    raise
                if not data:
                    if not start.received:
                        nothing_came(resend, send_error, None)
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
        # After an early answer the server has not read the rest of the request.
        reusable = start.reusable(head, asks_close) and send_error is None
        body = _ResponseBody(conn, decoder, first, reusable, pool, request)
        if decoder.complete:  # no body to read: the connection is free now
            body.finish(body.ends_clean())
        return make_response(head, body, conn.network_stream)

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._fallback is not None:
            await self._fallback.aclose()


async def _send(
    channel: Channel,
    request: httpx2.Request,
    head: bytes,
    chunked: bool,
    time_limit: float | None,
) -> None:
    body = request.stream
    try:
        if isinstance(body, httpx2.ByteStream) and not chunked:
            await channel.write(head + whole_body(body), time_limit)
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


async def _open_tunnel(
    channel: Channel, proxy: ProxyRoute, origin: Origin, timeouts: dict[str, float | None]
) -> None:
    """CONNECT through the proxy on ``channel`` to ``origin``; raises unless it agreed."""
    reply = TunnelReply()
    try:
        await channel.write(proxy.connect_head(origin), timeouts.get("write"))
        while True:
            data = await channel.read(timeouts.get("read"))
            if not data:
                raise httpx2.RemoteProtocolError("The proxy closed the connection during CONNECT")
            if reply.feed(data):
                return
    except TimeoutError as exc:
        raise httpx2.ReadTimeout("timed out waiting for the proxy") from exc
