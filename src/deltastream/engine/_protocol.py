"""Pure protocol state of one stream: body bytes in, typed items out.

``ChunkStream`` (Chat Completions) and ``ResponseEventStream`` (Responses) share the
SSE decoding, the end-of-stream rules and the way errors get the partial result; they
differ in how an event becomes an item and what ends the stream. No I/O here: the
shells in ``_streams`` feed them and decide what happens to the connection.

The engine works on its own msgspec types. A :class:`Face` (the drop-in's) turns each
item into what its users get, each error into its own classes and each snapshot into
its own types; without one, the engine's items, errors and snapshots are handed out
as they are (the native face). Rules that keep both faces exact:

- Items are accumulated as they are handed over (``handed``), not as they are decoded,
  so a snapshot holds exactly what the consumer has seen. With a face, the engine's
  item behind each presented one waits in ``pending`` until then.
- Every error raised while reading goes through :meth:`StreamCore.fail`, which
  attaches the partial result and the count of events handed over.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import httpx2
import msgspec

from ._accumulate import ChatAccumulator, ResponseAccumulator
from ._decode import (
    EventDecodeError,
    InBandError,
    decode_chat_event,
    decode_response_event,
    in_band_error,
    repair_response_event,
)
from ._errors import (
    APIError,
    APIStreamError,
    StreamDecodeError,
    StreamGapError,
    StreamTruncatedError,
)
from ._sse import DEFAULT_MAX_EVENT_SIZE, EventTooLargeError, ServerSentEvent, SSEDecoder
from .types.chat import ChatCompletionChunk
from .types.responses import (
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseIncompleteEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseRefusalDeltaEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

__all__ = ["ChunkStream", "Face", "ResponseEventStream", "StreamCore", "ends_in_done"]

_NONE: deque[Any] = deque(maxlen=0)  # shared, and never added to


class Face(Protocol):
    """How a face hands the engine's results to its users: either it ``decodes`` each
    event itself (``decode``, into items the ``accumulator`` it makes can fold), or it
    ``present``s each of the engine's items as one of its own."""

    decodes: bool
    # openai's way with a Responses failure: ``response.failed``, or an ``error`` event
    # without an ``error`` object, is handed over as an event and raises nothing.
    hands_failures: bool

    def decode(self, raw: bytes) -> Any:
        """An event's data as the face's item (only if it ``decodes``). Raises
        ``EventDecodeError`` for malformed data, ``InBandError`` for an error report."""
        ...

    def accumulator(self) -> Any:
        """An accumulator for the face's own items (only if it ``decodes``)."""
        ...

    def present(self, item: Any) -> Any:
        """What the consumer gets for one of the engine's items (if it does not
        ``decode``)."""
        ...

    def snapshot(self, core: StreamCore) -> Any:
        """The result accumulated so far, in the face's types."""
        ...

    def error(self, error: BaseException, core: StreamCore) -> BaseException:
        """The error to raise for ``error`` (the engine's, or one from a resumed
        request), carrying the partial result."""
        ...


class StreamCore:
    """Pure protocol state of one stream: feed it body bytes, get items back.

    By default each item is accumulated as it is decoded, and an error is raised at
    once (with ``.partial``). The stream shells pass ``accumulate=False``: they
    accumulate each item as they hand it over, so snapshots match what the caller has
    seen, and an error met in a read is kept in ``failure`` while ``feed`` returns the
    good items before it; the shell hands those over, then raises ``fail(failure)``.
    Subclasses decode one protocol: :class:`ChunkStream` (chat) and
    :class:`ResponseEventStream` (Responses).
    """

    __slots__ = (
        "accumulate",
        "accumulator",
        "done",
        "face",
        "failure",
        "failure_handed",
        "fed",
        "handed",
        "pending",
        "response",
        "sse",
    )

    accumulator: Any
    _done_marker = "data: [DONE]"  # what ends a stream, for the truncation message
    # Whether _chunks takes a read's plain events as their data alone (bytes), which
    # SSEDecoder.feed_plain gives without an object per event.
    plain = False

    def __init__(
        self,
        response: httpx2.Response,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        accumulate: bool = True,
        face: Face | None = None,
    ):
        self.response = response
        self.sse = SSEDecoder(max_event_size)
        self.accumulate = accumulate
        self.done = False
        self.failure_handed = False  # a failure event went out as an item (see Face)
        self.failure: APIError | None = None
        self.face = face
        self.fed: Sequence[Any] = ()  # the engine's items of the last feed
        # The engine's items behind those a face presented, until handed over (a deque
        # only for such a face: an empty one is 600 bytes, times every open stream).
        self.pending: deque[Any] = deque() if face is not None and not face.decodes else _NONE
        self.handed: Any = None  # set by subclasses once the accumulator exists

    def _set_accumulator(self, accumulator: Any) -> None:
        face = self.face
        if face is not None and face.decodes:
            accumulator = face.accumulator()
        self.accumulator = accumulator
        presents = face is not None and not face.decodes
        self.handed = self._hand_pending if presents else accumulator.add

    def _hand_pending(self, item: Any) -> None:
        self.accumulator.add(self.pending.popleft())

    def feed(self, data: bytes) -> Iterable[Any]:
        """The items this data completed (presented by the face, if there is one: then
        lazily, one at a time as they are iterated, so that a read's worth of the
        face's objects is never alive at once; ``fed`` holds the engine's items)."""
        sse = self.sse
        if self.plain:
            payloads = sse.feed_plain(data)
            if payloads is not None:
                return self._out(self._chunks(payloads))
        try:
            events = sse.feed_lines(data) if self.plain else sse.feed(data)
        except EventTooLargeError as exc:
            # Keep what the chunk completed before the oversized event, then fail.
            items = self._out(self._chunks(exc.events))
            error = StreamDecodeError(str(exc), response=self.response, data=b"", too_large=True)
            if self.accumulate:
                raise self.fail(error) from None
            if self.failure is None:
                self.failure = error
            return items
        return self._out(self._chunks(events))

    def _out(self, items: list[Any]) -> Iterable[Any]:
        self.fed = items
        face = self.face
        if face is None or face.decodes or not items:
            return items
        self.pending.extend(items)
        return map(face.present, items)

    def _chunks(self, events: list[Any]) -> list[Any]:
        """The items of these events (:class:`ServerSentEvent`, or with ``plain`` the
        data of plain ones)."""
        raise NotImplementedError

    def carries_token(self) -> bool:
        """Whether any item of the last feed carries generated output (time to first
        token)."""
        raise NotImplementedError

    @property
    def events_received(self) -> int:
        """Events handed over (accumulated) so far: not those decoded and never handed
        over (the consumer stopped, or an error came first), nor those a resumed
        stream sent again."""
        raise NotImplementedError

    def snapshot(self) -> Any:
        """The result accumulated from the items handed over so far."""
        face = self.face
        return self.accumulator.snapshot() if face is None else face.snapshot(self)

    def end(self, *, require_done: bool = True) -> None:
        """The body ended. Raise if the stream never said it was done."""
        if not self.done and self._over_without_marker():
            self.done = True
        self.sse.close()
        if not self.done and require_done:
            raise self.fail(
                StreamTruncatedError(
                    message=(
                        f"The stream ended without {self._done_marker} after "
                        f"{self.events_received} events; what arrived is in .partial"
                    ),
                    request=self.response.request,
                )
            )

    def _over_without_marker(self) -> bool:
        """Whether the stream is over though its end marker never came: it was cut
        off (a final event the SSE decoder does not dispatch), or a failure was handed
        over as an event."""
        return self.failure_handed

    def fail(self, error: BaseException) -> BaseException:
        """The error to raise for ``error``, carrying what was received so far."""
        face = self.face
        if face is not None:
            return face.error(error, self)
        if isinstance(error, APIError):
            error.partial = self.accumulator.snapshot()
            error.events_received = self.events_received
        return error


class ChunkStream(StreamCore):
    """Pure protocol state of one chat stream: body bytes in, chunks out."""

    __slots__ = ("decode", "fed_raw", "first_unread", "lazy", "token_seen")

    accumulator: ChatAccumulator
    plain = True

    def __init__(
        self,
        response: httpx2.Response,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        accumulate: bool = True,
        face: Face | None = None,
    ):
        super().__init__(response, max_event_size=max_event_size, accumulate=accumulate, face=face)
        self._set_accumulator(ChatAccumulator())
        self.lazy = face is not None and face.decodes
        self.decode: Any = face.decode if self.lazy else decode_chat_event  # type: ignore[union-attr]
        self.token_seen = False
        # The first read that brings events is decoded as it is handed over, like a
        # decoding face's every read: its first chunk goes out before the rest of the
        # read is decoded (a server may send a prompt's worth at once). Later reads are
        # decoded whole, which costs less per chunk.
        self.first_unread = face is None and not accumulate
        self.fed_raw = self.lazy  # `fed` holds the events, not yet decoded

    def _over_without_marker(self) -> bool:
        return ends_in_done(self.sse)

    def _chunks(self, events: list[Any]) -> list[Any]:
        """The chunks of these events (or of their data: see ``plain``); for a face
        that decodes, and for the stream's first events, the events themselves (up to
        ``[DONE]``), decoded one by one as they are handed over (``_out``)."""
        plain = _plain(events)
        if self.first_unread:
            self.first_unread = not events
            self.fed_raw = bool(events)
        elif not self.lazy:
            self.fed_raw = False
        if self.fed_raw:  # cut at [DONE] ("[DONE] " is found when decoded)
            if plain:
                if _DONE in events:
                    self.done = True
                    return events[: events.index(_DONE)]
                return events
            for i, event in enumerate(events):
                if event.raw_data == _DONE:
                    self.done = True
                    return events[:i]
            return events
        chunks: list[ChatCompletionChunk] = []
        add = self.accumulator.add
        decode = self.decode
        accumulate = self.accumulate
        try:
            for event in events:
                raw = event if plain else event.raw_data
                if raw == b"[DONE]":
                    self.done = True
                    break
                try:  # _one(), inlined: this runs for every event
                    chunk = decode(raw)
                except (EventDecodeError, InBandError):
                    if raw.startswith(b"[DONE]"):  # "[DONE] ": openai ends there too
                        self.done = True
                        break
                    chunk = self._one(event)  # again, to raise or take the report's chunk
                if not plain and event.event == "error":
                    self._check_error(event)
                if accumulate:
                    add(chunk)
                chunks.append(chunk)
        except APIError as error:
            if accumulate:
                raise self.fail(error) from None
            self.failure = error  # the shell hands `chunks` over first, then raises it
        return chunks

    def _out(self, items: list[Any]) -> Iterable[Any]:
        if not self.fed_raw:
            return super()._out(items)
        self.fed = items
        return self._decoded(items)

    def _decoded(self, events: list[Any]) -> Iterator[Any]:
        """The face's chunks for these events, each decoded when asked for: the face's
        objects are many and short-lived, and a read's worth alive at once would
        outlive the garbage collector's youngest generation and cost a full collection
        every so often. An error ends them: ``failure`` (or, accumulating, raised)."""
        add = self.accumulator.add if self.accumulate else None
        decode = self.decode
        plain = _plain(events)
        try:
            for event in events:
                raw = event if plain else event.raw_data
                try:  # _one(), inlined: this runs for every event
                    chunk = decode(raw)
                except (EventDecodeError, InBandError):
                    if raw.startswith(b"[DONE]"):  # "[DONE] ": openai ends there too
                        self.done = True
                        return
                    chunk = self._one(event)
                if not plain and event.event == "error":
                    self._check_error(event)
                if not self.token_seen:
                    self.token_seen = _carries_token(chunk)
                if add is not None:
                    add(chunk)
                yield chunk
        except APIError as error:
            if add is not None:
                raise self.fail(error) from None
            self.failure = error  # the shell raises it after the chunks before it

    def _one(self, event: ServerSentEvent | bytes) -> Any:
        if isinstance(event, bytes):  # a plain event's data
            event = ServerSentEvent(event)
        try:
            chunk = self.decode(event.raw_data)
        except EventDecodeError as exc:
            self._check_error(event)  # an error report in a shape chunks never have
            raise StreamDecodeError(str(exc), response=self.response, data=exc.data) from None
        except InBandError as report:
            self._check_error(event)  # raises, unless the report is not one after all
            chunk = report.chunk
        if event.event == "error":
            self._check_error(event)
        return chunk

    @property
    def events_received(self) -> int:
        return self.accumulator.chunks

    def carries_token(self) -> bool:
        if self.fed_raw:
            return self.token_seen
        return any(_carries_token(chunk) for chunk in self.fed)

    def _check_error(self, event: ServerSentEvent) -> None:
        payload = in_band_error(event.raw_data)
        if payload is None and event.event != "error":
            return
        body: object = payload if payload is not None else event.data
        inner = payload.get("error") if payload is not None else None
        message = inner.get("message") if isinstance(inner, dict) else None
        if not isinstance(message, str) or not message:
            message = f"The server reported an error in the stream: {event.data[:500]}"
        raise APIStreamError(message, self.response.request, body=body)


_DONE = b"[DONE]"


def _plain(events: list[Any]) -> bool:
    """Whether a read's events are plain ones' data (bytes), not ServerSentEvents."""
    return bool(events) and events[0].__class__ is bytes


class ResponseEventStream(StreamCore):
    """Pure protocol state of one Responses stream: body bytes in, typed events out.

    It is done at ``response.completed`` or ``response.incomplete`` (or ``[DONE]``); an
    ``error`` event or ``response.failed`` raises :class:`APIStreamError`.
    """

    __slots__ = ("last_sequence", "skip_through")

    accumulator: ResponseAccumulator
    _done_marker = "a terminal event (response.completed, .failed or .incomplete)"

    def __init__(
        self,
        response: httpx2.Response,
        *,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        accumulate: bool = True,
        face: Face | None = None,
    ):
        super().__init__(response, max_event_size=max_event_size, accumulate=accumulate, face=face)
        self._set_accumulator(ResponseAccumulator())
        self.last_sequence: int | None = None  # kept across resumes of the same stream
        # A resumed stream may send again events delivered before the drop: those up to
        # this sequence number are dropped (not counted, not handed over twice).
        self.skip_through: int | None = None

    def _chunks(self, events: list[ServerSentEvent]) -> list[ResponseStreamEvent]:
        items: list[ResponseStreamEvent] = []
        add = self.accumulator.add
        accumulate = self.accumulate
        face = self.face
        hands = face is not None and face.hands_failures
        try:
            for event in events:
                raw = event.raw_data
                if raw == b"[DONE]":
                    self.done = True
                    break
                try:
                    item = decode_response_event(raw, event.event)
                except EventDecodeError as exc:
                    if raw.startswith(b"[DONE]"):  # "[DONE] ": openai ends there too
                        self.done = True
                        break
                    item = self._off_schema(raw, event.event, exc)
                if hands and raw.find(b'"error"') >= 0 and _error_object(item):
                    # openai raises at any event whose data holds an error object, and
                    # never hands it over (a cheap test first: the key must be there).
                    raise self._stream_error(item)
                seq = item.sequence_number
                if seq is None:
                    # Unnumbered (or its number unreadable) in a numbered stream: taken
                    # to be the next one, so the event after it is not a gap (openai
                    # does not check the numbers). The accumulator counts it alike.
                    if self.last_sequence is not None:
                        self.last_sequence += 1
                else:
                    skip = self.skip_through
                    if skip is not None and seq <= skip:
                        continue
                    last = self.last_sequence
                    if last is not None and seq > last + 1:
                        request = self.response.request
                        raise StreamGapError(request=request, expected=last + 1, received=seq)
                    if last is None or seq > last:
                        self.last_sequence = seq
                if accumulate:
                    add(item)
                items.append(item)
                kind = type(item)
                if kind in _STOPS:
                    if kind is ResponseCompletedEvent or kind is ResponseIncompleteEvent:
                        self.done = True
                        break
                    if hands:  # its error object, if any, raised above
                        self.failure_handed = True
                        if kind is ResponseFailedEvent:
                            self.done = True
                            break
                        continue  # openai reads on: a response.failed may follow
                    raise self._stream_error(item)
        except APIError as error:
            if accumulate:
                raise self.fail(error) from None
            self.failure = error  # the shell hands `items` over first, then raises it
        return items

    def _off_schema(
        self, raw: bytes, name: str | None, refused: EventDecodeError
    ) -> ResponseStreamEvent:
        """An event of a known type with a field of the wrong type. A face hands it over
        as its own types take it (openai builds such events leniently), so the engine
        accumulates it with those fields left out; without a face it is an error."""
        if self.face is not None:
            try:
                event = repair_response_event(raw, name)
            except EventDecodeError:
                pass
            else:
                return event  # a number that could not be read counts as none sent
        raise StreamDecodeError(str(refused), response=self.response, data=refused.data)

    @property
    def events_received(self) -> int:
        return self.accumulator.events

    def carries_token(self) -> bool:
        return any(type(item) in _TOKEN_EVENTS for item in self.fed)

    def _stream_error(self, item: ResponseStreamEvent) -> APIStreamError:
        body = _data_of(item)
        code: Any
        message: Any
        kind: Any
        if isinstance(item, ResponseFailedEvent):
            failure = item.response.error
            code = failure.code if failure is not None else None
            message = failure.message if failure is not None else ""
            kind = "response.failed"
        else:
            nested = body.get("error")
            inner: dict[str, Any] = nested if isinstance(nested, dict) else body
            code, message, kind = inner.get("code"), inner.get("message"), inner.get("type")
        if not isinstance(message, str) or not message:
            message = f"The server reported an error in the stream: {str(body)[:500]}"
        error = APIStreamError(message, self.response.request, body=body)
        error.code = None if code is None else str(code)
        error.type = kind if isinstance(kind, str) else None
        return error


def ends_in_done(decoder: SSEDecoder) -> bool:
    """Whether a body ended in ``data: [DONE]`` without the blank line after it: the
    server said it was done (openai's client, which never asks for [DONE], ends there
    quietly too), though the SSE rules discard that cut-off event."""
    tail = decoder.unfinished()
    return tail is not None and tail.strip() == _DONE


def _error_object(item: ResponseStreamEvent) -> bool:
    """An event whose data holds a (truthy) ``error`` at its top, which openai raises as
    ``APIError`` whatever the event's type (it hands over a flat ``error`` event, and a
    ``response.failed``, whose error is inside its response)."""
    return bool(_data_of(item).get("error"))


def _data_of(item: ResponseStreamEvent) -> dict[str, Any]:
    """An event's data as sent."""
    try:
        return item.to_dict()
    except ValueError:  # bad UTF-8 in a field we skipped while decoding
        data: dict[str, Any] = msgspec.to_builtins(item)
        return data


def _carries_token(chunk: Any) -> bool:
    """Whether a chunk carries generated output. Asked only until one does, so it reads
    by ``getattr``: openai's chunks keep a choice or delta that is not an object (or
    ``"delta": null``, None) as sent."""
    for choice in chunk.choices:
        d = getattr(choice, "delta", None)
        if d is not None and (
            getattr(d, "content", None)
            or getattr(d, "refusal", None)
            or getattr(d, "tool_calls", None)
            or _reasoning(d)
        ):
            return True
    return False


def _reasoning(delta: Any) -> bool:
    """Reasoning text in a delta, under either name (openai's deltas have the fields
    only when a server sent them)."""
    return bool(getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None))


_STOPS = frozenset(
    {ResponseCompletedEvent, ResponseIncompleteEvent, ResponseFailedEvent, ResponseErrorEvent}
)
_TOKEN_EVENTS = frozenset(
    {
        ResponseTextDeltaEvent,
        ResponseRefusalDeltaEvent,
        ResponseReasoningTextDeltaEvent,
        ResponseReasoningSummaryTextDeltaEvent,
        ResponseFunctionCallArgumentsDeltaEvent,
    }
)
