"""The streaming response: writes a body of :mod:`._body` items to the client.

Rules:

- The body is written while a second task waits for ``http.disconnect``; whichever
  ends first ends the response, so a client that goes away stops a stall, a trickle
  or a headers-only wait at once.
- ``Cut`` breaks the request's own TCP connection (looked up in :class:`ServerStats`
  by peer address) and then waits for the disconnect, so uvicorn sees a client that
  went away rather than an app that failed.
- The body generator is always closed, whatever ends the response, and so is whatever
  ``on_close`` releases (an upstream response, for the proxy).
- When the server shuts down (:meth:`ServerStats.stop_streams`), an open stream ends
  cleanly: if the last write finished an event, an in-band error event saying so is
  sent, then the chunked body is terminated. The client sees a proper end and an
  error, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Final

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ._body import BodyItem, Cut, End, Pause
from ._connections import ServerStats
from ._wire import error_event

__all__ = ["ConnectionCutError", "StreamResponse"]

_CUT_WAIT_SECONDS: Final = 5.0
_EVENT_ENDS: Final = (b"\n\n", b"\r\r", b"\r\n\r\n", b"\n\r\n", b"\r\n\n")
SHUTDOWN_MESSAGE: Final = "The server is shutting down; the stream was ended early."


class ConnectionCutError(Exception):
    """Raised to make uvicorn close the connection when we cannot close it ourselves."""


class StreamResponse(Response):
    def __init__(
        self,
        body: AsyncGenerator[BodyItem, None],
        *,
        stats: ServerStats,
        headers: Mapping[str, str],
        status_code: int = 200,
        responses_api: bool = False,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.body_items = body
        self.stats = stats
        self.responses_api = responses_api
        self.on_close = on_close
        self._between_events = True
        self.status_code = status_code
        self.media_type = None
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.stats.streams += 1
        self.stats.active_streams += 1
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            writer = asyncio.ensure_future(self._write(scope, send))
            watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
            stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.stats.add_stopper(stop)
            finished: set[asyncio.Future[None]] = set()
            try:
                finished, _ = await asyncio.wait(
                    {writer, watcher, stop}, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                self.stats.remove_stopper(stop)
                for task in (writer, watcher, stop):
                    task.cancel()
                await asyncio.gather(writer, watcher, return_exceptions=True)
            if finished == {stop}:
                await self._end_for_shutdown(send)
                return
            error = None if writer.cancelled() else writer.exception()
            if error is not None:
                raise error
        finally:
            self.stats.active_streams -= 1
            try:
                await self.body_items.aclose()
            finally:
                if self.on_close is not None:
                    await self.on_close()

    async def _end_for_shutdown(self, send: Send) -> None:
        if self._between_events:
            event = error_event(
                SHUTDOWN_MESSAGE, responses_api=self.responses_api, code="server_shutting_down"
            )
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _write(self, scope: Scope, send: Send) -> None:
        async for item in self.body_items:
            if isinstance(item, bytes):
                if not item:
                    continue
                self._between_events = False
                await send({"type": "http.response.body", "body": item, "more_body": True})
                self._between_events = item.endswith(_EVENT_ENDS)
                # uvicorn's send only suspends when the socket is backed up; yield anyway
                # so a client that left is noticed before the next write.
                await asyncio.sleep(0)
            elif isinstance(item, Pause):
                await asyncio.sleep(item.seconds)
            elif isinstance(item, End):
                break
            elif isinstance(item, Cut):
                await self._cut(scope, reset=item.reset)
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _cut(self, scope: Scope, *, reset: bool) -> None:
        transport = self.stats.transport_for(scope.get("client"))
        if transport is None:
            raise ConnectionCutError("fault injection: connection cut")
        if reset:
            # What was written must reach the client before the reset throws away
            # whatever is still buffered.
            for _ in range(int(_CUT_WAIT_SECONDS / 0.01)):
                if transport.get_write_buffer_size() == 0:
                    break
                await asyncio.sleep(0.01)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger on, timeout 0: close() sends RST instead of FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        # The disconnect watcher ends the response as soon as uvicorn notices.
        await asyncio.sleep(_CUT_WAIT_SECONDS)


async def _wait_for_disconnect(receive: Receive) -> None:
    with contextlib.suppress(OSError):
        while (await receive())["type"] != "http.disconnect":
            pass
