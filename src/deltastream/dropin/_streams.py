"""openai's ``Stream`` and ``AsyncStream``, run by deltastream's engine.

They are what ``create(stream=True)`` returns on the drop-in clients (the clients hand
openai's response machinery these classes in place of openai's own): instances of
openai's stream classes, with openai's items, and every extra of the engine's streams
(deadlines, ``.partial`` on errors, ``get_final_completion()``, ``metrics``,
``tee()``, ``cancel()``, ``sse_events()``, automatic resume of background Responses
streams).
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast
from urllib.parse import quote

import httpx2
import openai
from openai._httpx2 import normalize_httpx_timeout
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from ..engine._deadlines import NO_TIMEOUT, Timeout
from ..engine._errors import APIError
from ..engine._http import (
    aensure_event_stream,
    check_event_stream,
    ensure_event_stream,
    is_event_stream,
)
from ..engine._protocol import ChunkStream, ResponseEventStream, StreamCore
from ..engine._streams import FINISHED_STATUSES, BaseAsyncStream, BaseStream
from ..transport._common import header
from ._errors import translate
from ._faces import ChatFace, ResponsesFace, _Face, text_of

__all__ = ["AsyncStream", "Stream", "engine_stream_class"]

T = TypeVar("T")

_RETRIEVE = re.compile(r"^/?responses/([^/?]+)$")


class Stream(BaseStream[T], openai.Stream[T]):
    """A streamed response, iterated synchronously: openai's ``Stream``, on the engine."""

    _core_type: type[StreamCore]
    _face_type: type[_Face]

    def __init__(
        self,
        *,
        cast_to: type[T],
        response: httpx2.Response,
        client: openai.OpenAI,
        options: Any = None,
    ) -> None:
        self._cast_to, self._client, self._options = cast_to, client, options
        settings = _settings(self, client, response, options)
        resume: Callable[[str, int | None], httpx2.Response] | None = None
        finished: Callable[[str], bool] | None = None
        if settings.pop("resumable"):

            def resume(response_id: str, after: int | None) -> httpx2.Response:
                request = _resume_request(options, response_id, after)
                return ensure_event_stream(client.get(**request, stream=True))

            def finished(response_id: str) -> bool:
                stored: Response = client.get(**_status_request(options, response_id))
                return stored.status in FINISHED_STATUSES

        BaseStream.__init__(self, response, resume=resume, finished=finished, **settings)

    @property
    def current_snapshot(self) -> Any:
        """The completion accumulated so far (openai's ``ChatCompletion``); on a Responses
        stream, the ``Response`` (see :attr:`current_response`)."""
        return self._core.snapshot()

    @property
    def current_response(self) -> Any:
        """The response accumulated so far (openai's ``Response``; Responses streams)."""
        return self._core.snapshot()

    def get_final_completion(self) -> Any:
        """Consume the rest of the stream; the accumulated ``ChatCompletion``."""
        self.until_done()
        return self._core.snapshot()

    def get_final_response(self) -> Any:
        """Consume the rest of a Responses stream; the accumulated ``Response``."""
        self.until_done()
        return self._core.snapshot()


class AsyncStream(BaseAsyncStream[T], openai.AsyncStream[T]):
    """A streamed response, iterated with ``async for``: openai's ``AsyncStream``, on
    the engine."""

    _core_type: type[StreamCore]
    _face_type: type[_Face]

    def __init__(
        self,
        *,
        cast_to: type[T],
        response: httpx2.Response,
        client: openai.AsyncOpenAI,
        options: Any = None,
    ) -> None:
        self._cast_to, self._client, self._options = cast_to, client, options
        settings = _settings(self, client, response, options)
        resume: Callable[[str, int | None], Awaitable[httpx2.Response]] | None = None
        finished: Callable[[str], Awaitable[bool]] | None = None
        if settings.pop("resumable"):

            async def resume(response_id: str, after: int | None) -> httpx2.Response:
                request = _resume_request(options, response_id, after)
                return await aensure_event_stream(await client.get(**request, stream=True))

            async def finished(response_id: str) -> bool:
                stored: Response = await client.get(**_status_request(options, response_id))
                return stored.status in FINISHED_STATUSES

        BaseAsyncStream.__init__(self, response, resume=resume, finished=finished, **settings)

    @property
    def current_snapshot(self) -> Any:
        """See :attr:`Stream.current_snapshot`."""
        return self._core.snapshot()

    @property
    def current_response(self) -> Any:
        """See :attr:`Stream.current_response`."""
        return self._core.snapshot()

    async def get_final_completion(self) -> Any:
        """See :meth:`Stream.get_final_completion`."""
        await self.until_done()
        return self._core.snapshot()

    async def get_final_response(self) -> Any:
        """See :meth:`Stream.get_final_response`."""
        await self.until_done()
        return self._core.snapshot()


class ChatCompletionChunkStream(Stream[ChatCompletionChunk], openai.Stream[ChatCompletionChunk]):
    """``create(stream=True)`` of Chat Completions. (openai's class is named among the
    bases again: openai finds the item type of a stream class in its direct bases.)"""

    _core_type = ChunkStream
    _face_type = ChatFace

    @property
    def current_snapshot(self) -> ChatCompletion:
        """The completion accumulated from the chunks received so far."""
        return cast(ChatCompletion, self._core.snapshot())

    def get_final_completion(self) -> ChatCompletion:
        """Consume the rest of the stream; the accumulated completion."""
        self.until_done()
        return self.current_snapshot

    def text_deltas(self) -> Iterator[str]:
        """The content text of choice 0, delta by delta. openai's chunks carry what the
        engine's never do: a null delta (no text), and content as a list of typed parts
        (the text of its text parts)."""
        for chunk in self._items:
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta is not None:
                    text = text_of(choice.delta.content)
                    if text:
                        yield text


class AsyncChatCompletionChunkStream(
    AsyncStream[ChatCompletionChunk], openai.AsyncStream[ChatCompletionChunk]
):
    """``create(stream=True)`` of Chat Completions, async."""

    _core_type = ChunkStream
    _face_type = ChatFace

    @property
    def current_snapshot(self) -> ChatCompletion:
        """See :attr:`ChatCompletionChunkStream.current_snapshot`."""
        return cast(ChatCompletion, self._core.snapshot())

    async def get_final_completion(self) -> ChatCompletion:
        """See :meth:`ChatCompletionChunkStream.get_final_completion`."""
        await self.until_done()
        return self.current_snapshot

    async def text_deltas(self) -> AsyncIterator[str]:
        """See :meth:`ChatCompletionChunkStream.text_deltas`."""
        async for chunk in self:
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta is not None:
                    text = text_of(choice.delta.content)
                    if text:
                        yield text


class ResponseEventsStream(Stream[ResponseStreamEvent], openai.Stream[ResponseStreamEvent]):
    """``create(stream=True)`` and ``retrieve(stream=True)`` of Responses."""

    _core_type = ResponseEventStream
    _face_type = ResponsesFace

    @property
    def current_response(self) -> Response | None:
        """The response accumulated from the events received so far."""
        return cast("Response | None", self._core.snapshot())

    def get_final_response(self) -> Response | None:
        """Consume the rest of the stream; the accumulated response."""
        self.until_done()
        return self.current_response


class AsyncResponseEventsStream(
    AsyncStream[ResponseStreamEvent], openai.AsyncStream[ResponseStreamEvent]
):
    """``create(stream=True)`` and ``retrieve(stream=True)`` of Responses, async."""

    _core_type = ResponseEventStream
    _face_type = ResponsesFace

    @property
    def current_response(self) -> Response | None:
        """See :attr:`ResponseEventsStream.current_response`."""
        return cast("Response | None", self._core.snapshot())

    async def get_final_response(self) -> Response | None:
        """See :meth:`ResponseEventsStream.get_final_response`."""
        await self.until_done()
        return self.current_response


_SYNC: dict[Any, type[Stream[Any]]] = {
    ChatCompletionChunk: ChatCompletionChunkStream,
    ResponseStreamEvent: ResponseEventsStream,
}
_ASYNC: dict[Any, type[AsyncStream[Any]]] = {
    ChatCompletionChunk: AsyncChatCompletionChunkStream,
    ResponseStreamEvent: AsyncResponseEventsStream,
}


def engine_stream_class(stream_cls: Any) -> type[Any] | None:
    """The engine's class for openai's ``Stream[X]`` / ``AsyncStream[X]``, when the
    engine speaks X's protocol (chat chunks, Responses events); None otherwise (the
    request then streams as openai streams it)."""
    origin = getattr(stream_cls, "__origin__", None)
    args: tuple[Any, ...] = getattr(stream_cls, "__args__", ())
    if len(args) != 1:
        return None
    if origin is openai.Stream:
        return _SYNC.get(args[0])
    if origin is openai.AsyncStream:
        return _ASYNC.get(args[0])
    return None


def _settings(stream: Any, client: Any, response: httpx2.Response, options: Any) -> dict[str, Any]:
    """The engine's settings for a stream of this request: its deadlines, its face, and
    whether (and as what) it can be opened again from a cursor."""
    if not is_event_stream(header(response.headers, b"content-type")):
        # Only a raw-response call's stream gets here (``with_raw_response``, then
        # ``parse()``): the client left its body unchecked, and unread, for the caller.
        try:
            check_event_stream(response, None)
        except APIError as error:
            raise translate(error, None, 0) from None
    resumable, response_id = _resumable(options)
    return {
        "timeout": _timeout(client, options),
        "core": stream._core_type,
        "face": stream._face_type(client, response),
        "max_resumes": _max_retries(client, options),
        "response_id": response_id,
        "resumable": resumable,
    }


def _timeout(client: Any, options: Any) -> Timeout:
    """The request's deadlines: its own ``timeout=`` or else the client's. None means
    no deadline at all, as in openai. openai's own forms (seconds, an ``httpx2.Timeout``)
    bound each read, and any byte ends a read's wait: so with them comments count, as
    a server's keep-alive comments keep openai's stream going. A ``deltastream.Timeout``
    says for itself."""
    value = getattr(options, "timeout", openai.NOT_GIVEN)
    if isinstance(value, openai.NotGiven):
        value = client.timeout
    if value is None:
        return NO_TIMEOUT
    if isinstance(value, Timeout):
        return value
    if isinstance(value, int | float):
        return _per_read(float(value))
    # The older httpx package's Timeout, which openai takes too (code written for
    # openai 1.x passes one): an httpx2.Timeout of the same phases.
    value = normalize_httpx_timeout(value)
    return Timeout(value, comments_count=True)


@functools.lru_cache(maxsize=64)
def _per_read(seconds: float) -> Timeout:
    """openai's ``timeout=seconds`` (one object per value: a client's every stream)."""
    return Timeout(seconds, comments_count=True)


def _max_retries(client: Any, options: Any) -> int:
    if options is None:
        return int(client.max_retries)
    return int(options.get_max_retries(client.max_retries))


def _resumable(options: Any) -> tuple[bool, str | None]:
    """Whether the request streams a stored (background) response, which can be
    streamed again from a cursor; and its id, when the request names it."""
    if options is None:
        return False, None
    if options.method.lower() == "get":
        match = _RETRIEVE.match(options.url)
        return (True, match.group(1)) if match else (False, None)
    body = options.json_data
    background = isinstance(body, dict) and body.get("background") is True
    return background and options.url.strip("/") == "responses", None


def _path(response_id: str) -> str:
    return f"/responses/{quote(response_id, safe='')}"


def _status_request(options: Any, response_id: str) -> dict[str, Any]:
    """``client.get()``'s arguments that read the stored response (to learn whether
    it is over), with the request's own headers (not openai's marks of a raw-response
    or helper call, which would change what ``get`` returns)."""
    given = options.headers if isinstance(options.headers, dict) else {}
    headers = {k: v for k, v in given.items() if not k.lower().startswith("x-stainless-")}
    return {"path": _path(response_id), "cast_to": Response, "options": {"headers": headers}}


def _resume_request(options: Any, response_id: str, after: int | None) -> dict[str, Any]:
    """``client.get()``'s arguments that stream ``response_id`` again from after event
    ``after`` (None: from where the request first asked), with its headers and limits."""
    headers = options.headers if isinstance(options.headers, dict) else {}
    params = {**(options.params or {}), "stream": "true"}
    if after is not None:
        params["starting_after"] = after
    resumed: dict[str, Any] = {"params": params, "headers": headers}
    if not isinstance(options.max_retries, openai.NotGiven):
        resumed["max_retries"] = options.max_retries
    if not isinstance(options.timeout, openai.NotGiven):
        resumed["timeout"] = options.timeout
    return {"path": _path(response_id), "cast_to": httpx2.Response, "options": resumed}
