"""The load server: a small asyncio HTTP/1.1 server built not to be the bottleneck.

``POST /v1/chat/completions`` answers with an event stream of ``max_tokens`` chunks
(see :mod:`bench.payload`). By default the body goes out as fast as the client reads
it, in ~64 KB pre-rendered writes of one HTTP chunk per event (``x-bench-framing:
coalesced``: one HTTP chunk per write); with the header ``x-bench-rate: R`` the events
are paced at R per second, each stamped with its send time. Connections are kept alive.

``GET /stats`` returns counters as JSON: ``accepted`` (TCP connections accepted),
``chat_connections`` (those that carried at least one chat request; ``/stats``
connections are not among them), ``requests``, ``open`` and ``cpu_s`` (this process's
CPU time), so the harness can tell how many connections a client used and whether the
server was busy.

Run: ``python -m bench.server [--port 0] [--cpu N]``; it prints ``PORT <n>`` once it
listens and stops when its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass

from .payload import bulk_writes, paced_events, response_head

__all__ = ["Stats", "main", "raise_fd_limit"]

_HIGH_WATER = 256 * 1024


@dataclass
class Stats:
    accepted: int = 0
    chat_connections: int = 0
    requests: int = 0
    open: int = 0


STATS = Stats()


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class _Request:
    __slots__ = ("body", "headers", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


class BenchProtocol(asyncio.Protocol):
    """One connection: parse requests one at a time, answer each, keep the connection."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.busy = False
        self.closing = False
        self.counted = False
        self.writable: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        STATS.accepted += 1
        STATS.open += 1

    def connection_lost(self, exc: Exception | None) -> None:
        STATS.open -= 1
        self.closing = True
        if self.timer is not None:
            self.timer.cancel()
        if self.task is not None:
            self.task.cancel()
        self._wake()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._next_request()

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake()

    # -- requests --------------------------------------------------------------------

    def _wake(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def _parse(self) -> _Request | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        method, path, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(self.buffer) < end + 4 + length:
            return None
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        return _Request(method, path, headers, body)

    def _next_request(self) -> None:
        request = self._parse()
        if request is None or self.transport is None:
            return
        self.busy = True
        if request.headers.get("connection", "").lower() == "close":
            self.closing = True
        if request.method == "POST" and request.path.endswith("/chat/completions"):
            self._chat(request)
        elif request.method == "GET" and request.path == "/stats":
            stats = asdict(STATS) | {"cpu_s": time.process_time()}
            self._reply(200, json.dumps(stats).encode(), "application/json")
        else:
            self._reply(404, b'{"error":{"message":"not found"}}', "application/json")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        assert self.transport is not None
        reason = "OK" if status == 200 else "Not Found"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self._finished()

    def _finished(self) -> None:
        self.busy = False
        self.task = None
        self.timer = None
        if self.closing:
            if self.transport is not None:
                self.transport.close()
            return
        if self.buffer:
            self._next_request()

    def _chat(self, request: _Request) -> None:
        if not self.counted:
            self.counted = True
            STATS.chat_connections += 1
        STATS.requests += 1
        try:
            n = int(json.loads(request.body).get("max_tokens") or 100)
        except (ValueError, AttributeError):
            n = 100
        rate = float(request.headers.get("x-bench-rate", "0") or 0)
        if rate > 0:
            self._paced(n, rate)
        else:
            coalesce = request.headers.get("x-bench-framing", "") == "coalesced"
            self.task = asyncio.get_running_loop().create_task(self._bulk(n, coalesce))

    async def _bulk(self, n: int, coalesce: bool) -> None:
        assert self.transport is not None
        write = self.transport.write
        for data in bulk_writes(n, coalesce=coalesce):
            if self.closing and self.transport.is_closing():
                return
            write(data)
            if self.writable is not None:
                await self.writable
        self._finished()

    def _paced(self, n: int, rate: float) -> None:
        assert self.transport is not None
        events = paced_events(n)
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.transport.write(response_head())
        step = 1.0 / rate

        def send(i: int) -> None:
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            transport.write(events.stamped(i, time.monotonic_ns()))
            if i >= events.count:
                self._finished()
            else:
                # The role event goes out at once; content events follow at the rate.
                self.timer = loop.call_at(start + (i + 1) * step, send, i + 1)

        send(0)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BenchProtocol, host, port, backlog=16384, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stdin_closed = loop.create_future()

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 4096) and not stdin_closed.done():
            stdin_closed.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    async with server:
        await stdin_closed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    raise_fd_limit()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
