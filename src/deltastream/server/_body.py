"""Streaming bodies: events in, faults applied, cut into writes, sent.

A body is an async iterator of items: ``bytes`` to write, :class:`Pause` to sleep,
:class:`End` to finish the body cleanly now, :class:`Cut` to break the connection.
Backends yield whole event blocks (and pauses for pacing); :func:`apply_faults`
rewrites that sequence; :func:`rechunk` regroups the bytes into writes of a fixed size,
flushing before every control item so a pause or a cut happens exactly where the faults
put it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Final

from ._faults import Faults
from ._wire import error_event

__all__ = [
    "BodyItem",
    "Cut",
    "End",
    "Pause",
    "apply_faults",
    "is_data_event",
    "is_done",
    "rechunk",
    "split_blocks",
]

HEADERS_ONLY_SECONDS: Final = 120.0
TRICKLE_LIMIT_SECONDS: Final = 600.0
KEEP_ALIVE: Final = b": keep-alive\n\n"
GARBAGE: Final = b"data: {this is not json\n\n"
_HUGE_WRITE: Final = 64 * 1024
_MANY_LINES_PER_WRITE: Final = 8192


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class End:
    """Finish the body here (the chunked body is terminated properly)."""


@dataclass(frozen=True, slots=True)
class Cut:
    """Break the connection: a FIN without the end of the chunked body, or a reset."""

    reset: bool = False


BodyItem = bytes | Pause | End | Cut


def split_blocks(data: bytes) -> Iterator[bytes]:
    """Cut raw SSE bytes after each blank line; the pieces join back to ``data`` exactly.

    Lines may end in LF, CRLF or CR. A last block without a blank line is yielded as is.
    """
    start = pos = 0
    size = len(data)
    previous_was_end = True  # the start of the data counts as just after a line end
    while pos < size:
        byte = data[pos]
        if byte in b"\r\n":
            end = pos + 2 if data[pos : pos + 2] == b"\r\n" else pos + 1
            if previous_was_end and pos > start:
                yield data[start:end]
                start = end
            previous_was_end = True
            pos = end
        else:
            previous_was_end = False
            pos += 1
    if start < size:
        yield data[start:]


def _lines(block: bytes) -> list[bytes]:
    return [line for line in block.splitlines() if line and not line.startswith(b":")]


def is_data_event(block: bytes) -> bool:
    return any(line == b"data" or line.startswith(b"data:") for line in _lines(block))


def is_done(block: bytes) -> bool:
    return _lines(block) in ([b"data: [DONE]"], [b"data:[DONE]"])


def _huge_line(size: int) -> Iterator[bytes]:
    head = b"data: "
    yield head[:size]
    remaining = size - len(head)
    piece = b"x" * _HUGE_WRITE
    while remaining > 0:
        yield piece[: min(remaining, _HUGE_WRITE)]
        remaining -= _HUGE_WRITE


def _many_lines(count: int) -> Iterator[bytes]:
    batch = b"data: x\n" * _MANY_LINES_PER_WRITE
    full, rest = divmod(count, _MANY_LINES_PER_WRITE)
    for _ in range(full):
        yield batch
    yield b"data: x\n" * rest + b"\n"


def _at_boundary(faults: Faults, written: int, responses_api: bool) -> Iterator[BodyItem]:
    """What the faults add once ``written`` data events have gone out."""
    if faults.garbage_after == written:
        yield GARBAGE
    if faults.stall_after is not None and faults.stall_after[0] == written:
        yield Pause(faults.stall_after[1])
    if written == 1 and faults.many_lines is not None:
        yield from _many_lines(faults.many_lines)
    if written == 1 and faults.huge_line is not None:
        yield from _huge_line(faults.huge_line)
        yield End()
    if faults.error_after == written:
        message = f"Injected fault: error after {written} events."
        yield error_event(message, responses_api=responses_api)
        yield End()
    if faults.reset_after == written:
        yield Cut(reset=True)
    if faults.drop_after == written:
        yield Cut()


async def _never_an_event(faults: Faults) -> AsyncGenerator[BodyItem, None]:
    if faults.headers_only:
        yield Pause(HEADERS_ONLY_SECONDS)
    elif faults.trickle is not None:
        interval = max(faults.trickle, 0.001)
        elapsed = 0.0
        while elapsed < TRICKLE_LIMIT_SECONDS:
            yield KEEP_ALIVE
            yield Pause(interval)
            elapsed += interval
    yield Cut()


async def apply_faults(
    source: AsyncIterator[BodyItem], faults: Faults, *, responses_api: bool = False
) -> AsyncGenerator[BodyItem, None]:
    """The body ``source`` (event blocks, pauses, maybe a cut) with ``faults`` applied."""
    if faults.headers_only or faults.trickle is not None:
        async for item in _never_an_event(faults):
            yield item
        return
    written = 0
    async for item in source:
        if not isinstance(item, bytes) or not is_data_event(item):
            yield item
            if isinstance(item, End | Cut):
                return
            continue
        if faults.no_done and is_done(item):
            continue
        for extra in _at_boundary(faults, written, responses_api):
            yield extra
            if isinstance(extra, End | Cut):
                return
        yield item
        written += 1
    for extra in _at_boundary(faults, written, responses_api):
        yield extra
        if isinstance(extra, End | Cut):
            return


async def rechunk(
    items: AsyncIterator[BodyItem], size: int | None
) -> AsyncGenerator[BodyItem, None]:
    """Regroup the bytes of ``items`` into writes of exactly ``size`` bytes.

    Only the write before a control item (and the last one) may be shorter. With
    ``size=None`` the items pass through unchanged.
    """
    if size is None:
        async for item in items:
            yield item
        return
    pending = bytearray()
    async for item in items:
        if isinstance(item, bytes):
            pending += item
            # Slicing from a memoryview avoids re-copying the tail for every write.
            view = memoryview(pending)
            offset = 0
            while len(pending) - offset >= size:
                yield bytes(view[offset : offset + size])
                offset += size
            view.release()
            del pending[:offset]
        else:
            if pending:
                yield bytes(pending)
                pending.clear()
            yield item
    if pending:
        yield bytes(pending)
