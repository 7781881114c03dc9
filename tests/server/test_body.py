"""The body pipeline: block splitting, fault application and re-chunking (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from deltastream.server._body import (
    BodyItem,
    Cut,
    End,
    Pause,
    apply_faults,
    rechunk,
    split_blocks,
)
from deltastream.server._faults import parse_faults

EVENTS = [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n", b"data: [DONE]\n\n"]


@pytest.mark.parametrize(
    ("data", "blocks"),
    [
        (b"data: 1\n\ndata: 2\n\n", [b"data: 1\n\n", b"data: 2\n\n"]),
        (b"data: 1\r\n\r\ndata: 2\r\n\r\n", [b"data: 1\r\n\r\n", b"data: 2\r\n\r\n"]),
        (b"data: 1\r\rdata: 2", [b"data: 1\r\r", b"data: 2"]),
        (b"event: x\ndata: 1\n\n\n: c\n\n", [b"event: x\ndata: 1\n\n", b"\n: c\n\n"]),
        (b"", []),
    ],
)
def test_split_blocks(data: bytes, blocks: list[bytes]) -> None:
    assert list(split_blocks(data)) == blocks
    assert b"".join(split_blocks(data)) == data


async def _source(items: list[bytes | Pause]) -> AsyncIterator[bytes | Pause]:
    for item in items:
        yield item


async def _collect(items: AsyncIterator[BodyItem]) -> list[BodyItem]:
    return [item async for item in items]


async def _faulted(header: str, events: list[bytes | Pause] | None = None) -> list[BodyItem]:
    source = _source(list(EVENTS) if events is None else events)
    return await _collect(apply_faults(source, parse_faults(header)))


async def test_no_faults_pass_through() -> None:
    assert await _faulted("") == EVENTS


async def test_drop_and_reset_after() -> None:
    assert await _faulted("drop-after=2") == [*EVENTS[:2], Cut()]
    assert await _faulted("reset-after=0") == [Cut(reset=True)]
    assert await _faulted("drop-after=4") == [*EVENTS, Cut()]
    assert await _faulted("drop-after=5") == EVENTS


async def test_error_after_ends_without_done() -> None:
    items = await _faulted("error-after=1")
    assert items[0] == EVENTS[0]
    assert isinstance(items[1], bytes)
    assert items[1].startswith(b"event: error\ndata: {")
    assert b'"code":"injected"' in items[1]
    assert items[2:] == [End()]


async def test_stall_garbage_and_no_done() -> None:
    items = await _faulted("stall-after=1:0.5;garbage-after=2;no-done")
    assert items == [
        EVENTS[0],
        Pause(0.5),
        EVENTS[1],
        b"data: {this is not json\n\n",
        EVENTS[2],
    ]


async def test_comments_and_pauses_are_not_counted() -> None:
    events: list[bytes | Pause] = [b": hi\n\n", Pause(0.1), *EVENTS]
    items = await _faulted("drop-after=1", events)
    assert items == [b": hi\n\n", Pause(0.1), EVENTS[0], Cut()]


async def test_huge_line_is_generated_in_pieces() -> None:
    items = await _faulted("huge-line=200000")
    assert items[0] == EVENTS[0]
    assert items[-1] == End()
    pieces = [item for item in items[1:-1] if isinstance(item, bytes)]
    assert max(len(piece) for piece in pieces) <= 64 * 1024
    line = b"".join(pieces)
    assert len(line) == 200000
    assert line.startswith(b"data: xxx")
    assert b"\n" not in line


async def test_many_lines_is_one_event() -> None:
    items = await _faulted("many-lines=20000")
    middle = b"".join(item for item in items[1:-3] if isinstance(item, bytes))
    assert middle == b"data: x\n" * 20000 + b"\n"
    assert items[-3:] == EVENTS[1:]


async def test_headers_only_and_trickle_never_send_an_event() -> None:
    assert await _faulted("headers-only") == [Pause(120.0), Cut()]
    trickle = apply_faults(_source(list(EVENTS)), parse_faults("trickle=0.5"))
    first = [await anext(trickle) for _ in range(4)]
    await trickle.aclose()
    assert first == [b": keep-alive\n\n", Pause(0.5), b": keep-alive\n\n", Pause(0.5)]


@pytest.mark.parametrize("size", [1, 3, 7, 64])
async def test_rechunk_sizes_and_flushes(size: int) -> None:
    items: list[BodyItem] = [b"abcdefghij", b"klm", Pause(1.0), b"nopqrstuvwxyz"]
    out = await _collect(rechunk(_source_items(items), size))
    pause_at = out.index(Pause(1.0))
    before, after = out[:pause_at], out[pause_at + 1 :]
    assert b"".join(x for x in before if isinstance(x, bytes)) == b"abcdefghijklm"
    assert b"".join(x for x in after if isinstance(x, bytes)) == b"nopqrstuvwxyz"
    for part in (before, after):
        sizes = [len(x) for x in part if isinstance(x, bytes)]
        assert all(s == size for s in sizes[:-1])
        assert 0 < sizes[-1] <= size


async def _source_items(items: list[BodyItem]) -> AsyncIterator[BodyItem]:
    for item in items:
        yield item
