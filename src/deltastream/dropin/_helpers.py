"""The ``.stream()`` helpers with deltastream's extras.

``chat.completions.stream()`` and ``responses.stream()`` are openai's own: its managers
open a ``create(stream=True)`` (on the drop-in, the engine's stream) and wrap it in its
helper stream, which makes openai's events and final results. Here the managers and
helper streams openai returns are given a subclass of their own class that adds the
engine's extras (``metrics``, ``cancel()``, ``events_received``, ``text_deltas()``),
read from the engine's stream underneath. Events, ``.type`` strings and final results
stay openai's, made by openai's code. (A subclass given to the object, rather than one
built in its place, keeps openai's constructors and private state out of reach.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import cached_property
from typing import Any, TypeVar

from openai.lib.streaming.chat import (
    AsyncChatCompletionStream,
    AsyncChatCompletionStreamManager,
    ChatCompletionStream,
    ChatCompletionStreamManager,
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

from ..engine._metrics import StreamMetrics

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
        """The text, delta by delta (the helper's own events go by meanwhile)."""
        kind = self._delta_type
        for event in self:  # type: ignore[attr-defined]
            if event.type == kind:
                yield event.delta


class _AsyncExtras(_Extras):
    __slots__ = ()

    async def text_deltas(self) -> AsyncIterator[str]:
        """See the sync helper's ``text_deltas()``."""
        kind = self._delta_type
        async for event in self:  # type: ignore[attr-defined]
            if event.type == kind:
                yield event.delta


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


def _extended(obj: Any, cls: type[Any]) -> Any:
    obj.__class__ = cls
    return obj


class _ChatManager(ChatCompletionStreamManager[T]):
    __slots__ = ()

    def __enter__(self) -> DeltaChatCompletionStream[T]:
        stream: DeltaChatCompletionStream[T] = _extended(
            super().__enter__(), DeltaChatCompletionStream
        )
        return stream


class _AsyncChatManager(AsyncChatCompletionStreamManager[T]):
    __slots__ = ()

    async def __aenter__(self) -> AsyncDeltaChatCompletionStream[T]:
        stream: AsyncDeltaChatCompletionStream[T] = _extended(
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
