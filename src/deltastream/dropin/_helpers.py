"""The ``.stream()`` helpers with deltastream's extras.

``chat.completions.stream()`` and ``responses.stream()`` are openai's own: its managers
open a ``create(stream=True)`` (on the drop-in, the engine's stream) and wrap it in its
helper stream, which makes openai's events and final results. Here the managers and
helper streams openai returns are given a subclass of their own class that adds the
engine's extras (``metrics``, ``cancel()``, ``events_received``, ``text_deltas()``),
read from the engine's stream underneath. Events, ``.type`` strings and final results
stay openai's, made by openai's code. (A subclass given to the object, rather than one
built in its place, keeps openai's constructors and private state out of reach.) The
chat helper's state is given one the same way, for the one chunk openai's fails on: a
null delta.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from functools import cached_property
from typing import Any, TypeVar

from openai.lib.streaming.chat import (
    AsyncChatCompletionStream,
    AsyncChatCompletionStreamManager,
    ChatCompletionStream,
    ChatCompletionStreamEvent,
    ChatCompletionStreamManager,
    ChatCompletionStreamState,
)
from openai.lib.streaming.responses import (
    AsyncResponseStream,
    AsyncResponseStreamManager,
    ResponseStream,
    ResponseStreamManager,
)
from openai.resources.chat import AsyncChat, Chat
from openai.resources.chat.completions import AsyncCompletions, Completions
from openai.resources.responses import AsyncResponses, Responses
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDelta

from ..engine._metrics import StreamMetrics
from ._faces import text_of

__all__ = ["AsyncChatResource", "AsyncResponsesResource", "ChatResource", "ResponsesResource"]

T = TypeVar("T")


class _Extras:
    """The engine's extras, on a helper stream whose engine stream is ``_raw_stream``."""

    __slots__ = ()
    _raw_stream: Any
    _delta_type: str

    @property
    def metrics(self) -> StreamMetrics:
        """Timing and volume of the stream so far (see ``StreamMetrics``)."""
        metrics: StreamMetrics = self._raw_stream.metrics
        return metrics

    @property
    def events_received(self) -> int:
        """Server-sent events handed over so far."""
        count: int = self._raw_stream.events_received
        return count

    @property
    def cancelled(self) -> bool:
        cancelled: bool = self._raw_stream.cancelled
        return cancelled

    def cancel(self) -> None:
        """Stop the stream from any thread or task; the loop ends quietly."""
        self._raw_stream.cancel()


class _SyncExtras(_Extras):
    __slots__ = ()

    def text_deltas(self) -> Iterator[str]:
        """The text, delta by delta (the helper's own events go by meanwhile). A chat
        delta sent as a list of typed parts gives the text of its text parts."""
        kind = self._delta_type
        for event in self:  # type: ignore[attr-defined]
            if event.type == kind:
                text = text_of(event.delta)
                if text or event.delta.__class__ is str:  # a string delta as it is
                    yield text


class _AsyncExtras(_Extras):
    __slots__ = ()

    async def text_deltas(self) -> AsyncIterator[str]:
        """See the sync helper's ``text_deltas()``."""
        kind = self._delta_type
        async for event in self:  # type: ignore[attr-defined]
            if event.type == kind:
                text = text_of(event.delta)
                if text or event.delta.__class__ is str:  # a string delta as it is
                    yield text


# Each extended class has its helper class as its first base: CPython lets an object
# take a new class only then (openai's helpers are Generic).
class DeltaChatCompletionStream(ChatCompletionStream[T], _SyncExtras):
    __slots__ = ()
    _delta_type = "content.delta"


class AsyncDeltaChatCompletionStream(AsyncChatCompletionStream[T], _AsyncExtras):
    __slots__ = ()
    _delta_type = "content.delta"


class DeltaResponseStream(ResponseStream[T], _SyncExtras):
    __slots__ = ()
    _delta_type = "response.output_text.delta"


class AsyncDeltaResponseStream(AsyncResponseStream[T], _AsyncExtras):
    __slots__ = ()
    _delta_type = "response.output_text.delta"


class _ChatState(ChatCompletionStreamState[T]):
    """openai's helper state, which fails on a chunk whose delta is null (None, as
    openai hands it over) with an AttributeError: it is given that chunk with an empty
    delta in its place, and its events carry the chunk as handed over."""

    __slots__ = ()

    def handle_chunk(self, chunk: ChatCompletionChunk) -> Iterable[ChatCompletionStreamEvent[T]]:
        for choice in chunk.choices:
            if choice.delta is None:
                return self._handle_null_delta(chunk)
        return super().handle_chunk(chunk)

    def _handle_null_delta(self, chunk: ChatCompletionChunk) -> list[ChatCompletionStreamEvent[T]]:
        choices = [
            choice
            if choice.delta is not None
            else choice.model_copy(update={"delta": ChoiceDelta()})
            for choice in chunk.choices
        ]
        events = list(super().handle_chunk(chunk.model_copy(update={"choices": choices})))
        for event in events:
            if event.type == "chunk":
                event.chunk = chunk
        return events


def _extended(obj: Any, cls: type[Any]) -> Any:
    obj.__class__ = cls
    return obj


def _chat_stream(stream: Any, cls: type[Any]) -> Any:
    _extended(stream._state, _ChatState)
    return _extended(stream, cls)


class _ChatManager(ChatCompletionStreamManager[T]):
    __slots__ = ()

    def __enter__(self) -> DeltaChatCompletionStream[T]:
        stream: DeltaChatCompletionStream[T] = _chat_stream(
            super().__enter__(), DeltaChatCompletionStream
        )
        return stream


class _AsyncChatManager(AsyncChatCompletionStreamManager[T]):
    __slots__ = ()

    async def __aenter__(self) -> AsyncDeltaChatCompletionStream[T]:
        stream: AsyncDeltaChatCompletionStream[T] = _chat_stream(
            await super().__aenter__(), AsyncDeltaChatCompletionStream
        )
        return stream


class _ResponsesManager(ResponseStreamManager[T]):
    __slots__ = ()

    def __enter__(self) -> DeltaResponseStream[T]:
        stream: DeltaResponseStream[T] = _extended(super().__enter__(), DeltaResponseStream)
        return stream


class _AsyncResponsesManager(AsyncResponseStreamManager[T]):
    __slots__ = ()

    async def __aenter__(self) -> AsyncDeltaResponseStream[T]:
        stream: AsyncDeltaResponseStream[T] = _extended(
            await super().__aenter__(), AsyncDeltaResponseStream
        )
        return stream


class _Completions(Completions):
    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return _extended(super().stream(*args, **kwargs), _ChatManager)


class _AsyncCompletions(AsyncCompletions):
    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return _extended(super().stream(*args, **kwargs), _AsyncChatManager)


class ChatResource(Chat):
    """openai's ``client.chat``, whose ``completions.stream()`` has the extras."""

    @cached_property
    def completions(self) -> Completions:
        return _Completions(self._client)


class AsyncChatResource(AsyncChat):
    """openai's async ``client.chat``, whose ``completions.stream()`` has the extras."""

    @cached_property
    def completions(self) -> AsyncCompletions:
        return _AsyncCompletions(self._client)


class ResponsesResource(Responses):
    """openai's ``client.responses``, whose ``stream()`` has the extras."""

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return _extended(super().stream(*args, **kwargs), _ResponsesManager)


class AsyncResponsesResource(AsyncResponses):
    """openai's async ``client.responses``, whose ``stream()`` has the extras."""

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return _extended(super().stream(*args, **kwargs), _AsyncResponsesManager)
