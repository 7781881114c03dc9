"""The native face's ``Stream`` and ``AsyncStream``: the engine's stream shells with
the engine's own msgspec types for snapshots, final results and higher-level events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TypeVar, cast

from ..engine._events import EventBuilder, StreamEvent
from ..engine._streams import BaseAsyncStream, BaseStream
from ..engine.types.chat import ChatCompletion, ChatCompletionChunk
from ..engine.types.responses import Response

__all__ = ["AsyncStream", "Stream"]

T = TypeVar("T")


class Stream(BaseStream[T]):
    """A streamed response, iterated synchronously. Use it as a context manager."""

    @property
    def current_snapshot(self) -> ChatCompletion:
        """The completion accumulated from the chunks received so far (on a Responses
        stream, the :class:`Response`: see :attr:`current_response`)."""
        snapshot: ChatCompletion = self._core.snapshot()
        return snapshot

    @property
    def current_response(self) -> Response:
        """The response accumulated from the events received so far (Responses streams)."""
        snapshot: Response = self._core.snapshot()
        return snapshot

    def get_final_completion(self) -> ChatCompletion:
        """Consume the rest of the stream and return the accumulated completion."""
        self.until_done()
        return self.current_snapshot

    def get_final_response(self) -> Response:
        """Consume the rest of a Responses stream and return the accumulated response."""
        self.until_done()
        return self.current_response

    def events(self) -> Iterator[StreamEvent]:
        """Higher-level events: content and refusal deltas with their snapshots, tool-call
        argument deltas (with lazily parsed partial JSON) and completions, finish
        reasons, usage."""
        builder = EventBuilder(self._core.accumulator)
        for chunk in self._items:
            yield from builder.events(cast(ChatCompletionChunk, chunk))
        yield from builder.finish()


class AsyncStream(BaseAsyncStream[T]):
    """A streamed response, iterated with ``async for``. Use ``async with``."""

    @property
    def current_snapshot(self) -> ChatCompletion:
        """See :attr:`Stream.current_snapshot`."""
        snapshot: ChatCompletion = self._core.snapshot()
        return snapshot

    @property
    def current_response(self) -> Response:
        """See :attr:`Stream.current_response`."""
        snapshot: Response = self._core.snapshot()
        return snapshot

    async def get_final_completion(self) -> ChatCompletion:
        """See :meth:`Stream.get_final_completion`."""
        await self.until_done()
        return self.current_snapshot

    async def get_final_response(self) -> Response:
        """See :meth:`Stream.get_final_response`."""
        await self.until_done()
        return self.current_response

    async def events(self) -> AsyncIterator[StreamEvent]:
        """See :meth:`Stream.events`."""
        builder = EventBuilder(self._core.accumulator)
        async for chunk in self:
            for event in builder.events(cast(ChatCompletionChunk, chunk)):
                yield event
        for event in builder.finish():
            yield event
