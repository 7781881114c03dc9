"""The raw floor: the least work a Python client can do to turn the stream into objects.

A hand-written HTTP/1.1 request on a plain socket, chunked transfer decoding, frames
split on ``b"\\n\\n"`` and each ``data:`` payload decoded by msgspec into a small
Struct. No validation beyond that, no error handling beyond stopping: it is the floor
the real clients are compared to, not a client anyone should use.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import msgspec

__all__ = ["AsyncFloorClient", "FloorClient", "FloorParser", "MiniChunk"]

# The size deltastream's transports read with. A larger read is no cheaper on a stream
# (its reads hold a few events each), and at 256 KiB each read's buffer is a block of
# the heap's top that glibc gives back to the kernel when it is freed and takes again at
# the next read: about four page faults a request, in some processes and not others,
# which made the floor's request cost flip between about 55 and about 110 µs.
_READ = 64 * 1024


class MiniDelta(msgspec.Struct):
    content: str | None = None


class MiniChoice(msgspec.Struct):
    index: int
    delta: MiniDelta


class MiniChunk(msgspec.Struct):
    id: str
    choices: list[MiniChoice]


_decode = msgspec.json.Decoder(MiniChunk).decode


class FloorParser:
    """Sans-I/O: response bytes in, chunks out. One response at a time."""

    __slots__ = ("body", "buffer", "done", "head_done", "last", "remaining", "skip")

    def __init__(self) -> None:
        self.buffer = b""  # transfer-encoded bytes not yet decoded
        self.body = b""  # decoded body bytes not yet split into events
        self.head_done = False
        self.remaining = 0  # data bytes left in the current HTTP chunk
        self.skip = 0  # CRLF bytes left to skip after it
        self.last = False  # the zero-length chunk was seen
        self.done = False

    def feed(self, data: bytes) -> list[MiniChunk]:
        buffer = self.buffer + data if self.buffer else data
        if not self.head_done:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return []
            if buffer[9:12] != b"200":
                raise RuntimeError(f"HTTP status {buffer[9:12]!r}")
            self.head_done = True
            buffer = buffer[end + 4 :]
        parts = [self.body] if self.body else []
        pos, size, remaining, skip = 0, len(buffer), self.remaining, self.skip
        while pos < size:
            if remaining:
                take = min(remaining, size - pos)
                parts.append(buffer[pos : pos + take])
                pos += take
                remaining -= take
            elif skip:
                take = min(skip, size - pos)
                pos += take
                skip -= take
            elif self.last:
                break
            else:
                line_end = buffer.find(b"\r\n", pos)
                if line_end < 0:
                    break
                remaining = int(buffer[pos:line_end], 16)
                pos = line_end + 2
                skip = 2  # the CRLF after the data (after the last-chunk line: the end)
                self.last = remaining == 0
        self.remaining, self.skip = remaining, skip
        self.done = self.last and not skip
        self.buffer = buffer[pos:]
        frames = b"".join(parts).split(b"\n\n")
        self.body = frames.pop()
        return [_decode(frame[6:]) for frame in frames if frame.startswith(b"data: {")]


def _request(host: str, port: int, n: int, headers: dict[str, str] | None) -> bytes:
    body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],'
    body += b'"stream":true,"max_tokens":%d}' % n
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class FloorClient:
    """One kept-alive blocking socket."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None

    def stream(self, n: int, headers: dict[str, str] | None = None) -> Iterator[MiniChunk]:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        sock.sendall(_request(self.host, self.port, n, headers))
        parser = FloorParser()
        recv = sock.recv
        while not parser.done:
            data = recv(_READ)
            if not data:
                raise ConnectionError("connection closed mid-response")
            yield from parser.feed(data)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class AsyncFloorClient:
    """The asyncio twin: one connection per concurrent stream, kept alive between them."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.all: list[asyncio.StreamWriter] = []

    async def stream(
        self, n: int, headers: dict[str, str] | None = None
    ) -> AsyncIterator[MiniChunk]:
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=_READ)
            # asyncio's socket transport reads 256 KiB at a time: its own attribute, set
            # on the instance (see _READ; uvloop's transport has no such attribute).
            if hasattr(writer.transport, "max_size"):
                writer.transport.max_size = _READ
            self.all.append(writer)
        writer.write(_request(self.host, self.port, n, headers))
        parser = FloorParser()
        while not parser.done:
            data = await reader.read(_READ)
            if not data:
                raise ConnectionError("connection closed mid-response")
            for chunk in parser.feed(data):
                yield chunk
        self.idle.append((reader, writer))

    async def aclose(self) -> None:
        for writer in self.all:
            writer.close()
        self.idle.clear()
        self.all.clear()
