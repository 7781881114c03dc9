"""``stream.tee()``: several independent iterators over one stream.

Each iterator gets every item, in order. Items one iterator has taken and another has
not yet are buffered for the slower one, at most ``max_buffer`` of them: past that the
faster iterator raises :class:`TeeBufferFull` rather than let memory grow without
bound. An error from the stream reaches every iterator, after the items before it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Generic, TypeVar

from ._errors import OpenAIError

__all__ = ["DEFAULT_TEE_BUFFER", "TeeBufferFull", "async_tee", "tee"]

T = TypeVar("T")
DEFAULT_TEE_BUFFER = 10_000


class TeeBufferFull(OpenAIError):
    """One tee iterator ran ``max_buffer`` items ahead of another."""


class _Shared(Generic[T]):
    def __init__(self, n: int, max_buffer: int) -> None:
        self.buffers: list[deque[T]] = [deque() for _ in range(n)]
        self.max_buffer = max_buffer
        self.error: BaseException | None = None
        self.finished = False

    def distribute(self, item: T, taker: int) -> None:
        for index, buffer in enumerate(self.buffers):
            if index == taker:
                continue
            if len(buffer) >= self.max_buffer:
                raise TeeBufferFull(
                    f"tee iterator {taker} is {self.max_buffer} items ahead of iterator {index}"
                )
            buffer.append(item)

    def after_buffer(self) -> None:
        """Raise what ended the source, for an iterator whose buffer is empty."""
        if self.error is not None:
            raise self.error
        if self.finished:
            raise StopIteration


def tee(source: Iterator[T], n: int = 2, max_buffer: int = DEFAULT_TEE_BUFFER) -> list[Iterator[T]]:
    shared: _Shared[T] = _Shared(n, max_buffer)

    def branch(index: int) -> Iterator[T]:
        buffer = shared.buffers[index]
        while True:
            if buffer:
                yield buffer.popleft()
                continue
            try:
                shared.after_buffer()
                item = next(source)
            except StopIteration:
                shared.finished = True
                return
            except Exception as exc:
                shared.error = exc
                raise
            shared.distribute(item, index)
            yield item

    return [branch(i) for i in range(n)]


def async_tee(
    source: AsyncIterator[T], n: int = 2, max_buffer: int = DEFAULT_TEE_BUFFER
) -> list[AsyncIterator[T]]:
    shared: _Shared[T] = _Shared(n, max_buffer)
    lock = asyncio.Lock()  # one branch pulls from the source at a time

    async def branch(index: int) -> AsyncIterator[T]:
        buffer = shared.buffers[index]
        while True:
            if buffer:
                yield buffer.popleft()
                continue
            async with lock:
                if buffer:  # another branch pulled while we waited
                    continue
                try:
                    shared.after_buffer()
                    item = await source.__anext__()
                except (StopIteration, StopAsyncIteration):
                    shared.finished = True
                    return
                except Exception as exc:
                    shared.error = exc
                    raise
                shared.distribute(item, index)
            yield item

    return [branch(i) for i in range(n)]
