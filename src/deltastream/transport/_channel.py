"""One asyncio connection's bytes: an ``asyncio.BufferedProtocol`` that hands what
arrives to whoever awaits :meth:`Channel.read`, and waits for the socket to drain on
:meth:`Channel.write`. The async transport's only contact with the event loop's
transports (asyncio's own or uvloop's)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import cast

import httpx2

from ._common import shutdown_socket

__all__ = ["Channel", "shutdown_transport"]

_HIGH_WATER = 256 * 1024  # buffered and unread: stop reading from the socket
_TIMER_SLACK = 0.001


class Channel(asyncio.BufferedProtocol):
    """One connection's bytes, handed to whoever awaits :meth:`read`.

    Reads go into a buffer of ``READ_SIZE`` and are handed over one read at a time: a
    quarter-megabyte batch (asyncio's own read size) decodes measurably slower per
    event than 64 KiB ones, as the batch and its objects no longer fit the CPU cache.
    The buffer is the pool's, shared by its connections: asyncio fills it and calls
    ``buffer_updated`` in one step, which copies the bytes out at once.
    """

    __slots__ = (
        "_buffer",
        "_timer",
        "chunks",
        "deadline",
        "eof",
        "error",
        "loop",
        "reader",
        "reading_paused",
        "size",
        "transport",
        "writer",
        "writing_paused",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, buffer: memoryview) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = buffer
        # A list, not a deque: a deque is 600 bytes even empty, times every connection
        self.chunks: list[bytes] = []
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
        writer = self.writer
        if writer is not None and not writer.done():
            writer.set_result(None)  # the server answered while a body waits to drain

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
            try:
                await self.arrival(time_limit)
            finally:
                self.waited()
        return self.take()

    def arrival(self, time_limit: float | None) -> asyncio.Future[None]:
        """What to await for something to arrive (or the end, or ``TimeoutError`` after
        ``time_limit``); call :meth:`waited` once it is over, however it ended. Apart
        from :meth:`read` so that a caller reading many times waits with no coroutine
        of its own per read."""
        waiter = self.reader = self._waiter(time_limit)
        return waiter

    def waited(self) -> None:
        self.reader = None
        self.deadline = None

    def take(self) -> bytes:
        """The oldest read not handed over yet; b"" at EOF (``httpx2.ReadError`` if the
        connection failed). Only when :meth:`arrival` is over or not needed."""
        chunks = self.chunks
        if not chunks:
            if self.error is not None:
                raise httpx2.ReadError(str(self.error) or type(self.error).__name__)
            return b""
        data = chunks.pop(0)
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
        while self.writing_paused:
            await self._drained(time_limit)
            if not self.writing_paused:
                return
            if self.eof:
                raise httpx2.WriteError("The connection closed while sending")
            if self.chunks and _refusal(self.chunks[0]):
                raise httpx2.WriteError("The server answered before the request was sent")

    def answered(self) -> bool:
        """Something from the server (or its end) is waiting to be read."""
        return bool(self.chunks) or self.eof

    async def _drained(self, time_limit: float | None) -> None:
        waiter = self.writer = self._waiter(time_limit)
        try:
            await waiter
        finally:
            self.writer = None
            self.deadline = None

    def _waiter(self, time_limit: float | None) -> asyncio.Future[None]:
        """The future one wait awaits; it fails with ``TimeoutError`` after ``time_limit``."""
        waiter: asyncio.Future[None] = self.loop.create_future()
        if time_limit is not None:
            self._arm(self.loop.time() + time_limit)
        elif self._timer is not None:
            # Waits without a limit from now on, most likely (a stream's body, whose
            # deadlines its watchdog keeps): an open stream holds no timer.
            self._timer.cancel()
            self._timer = None
        return waiter

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
                shutdown_transport(transport, socket.SHUT_RDWR)
            if self.loop.is_closed():
                _close_orphan(transport)
            else:
                transport.abort()


def _refusal(data: bytes) -> bool:
    """Whether a response starts with an error status (4xx, 5xx): RFC 9112 9.5 asks a
    client to stop sending the body then. Anything else (a 100 Continue, a server
    that answers while it reads) is no reason to."""
    return data.startswith(b"HTTP/1.") and data[9:10] in (b"4", b"5")


def shutdown_transport(transport: asyncio.BaseTransport, how: int) -> None:
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
