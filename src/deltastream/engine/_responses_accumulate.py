"""``ResponseAccumulator``: fold Responses stream events into the final ``Response``.

Pure and linear: deltas are appended to lists and joined only when a snapshot is built.

Merging rules (as the wire does it across servers):

- Items are keyed by ``output_index``. An event without one (llama.cpp) belongs to the
  item with its ``item_id``; an ``output_item.added`` without either starts a new item.
- An item's fields come from its latest ``output_item.added``/``.done``; text, refusal,
  reasoning text, summary text and function-call arguments come from their deltas when
  any were sent, otherwise from the ``.done`` events or the item itself.
- ``status``, ``usage``, ``error`` and the rest come from the latest event carrying the
  whole ``response`` (the terminal one last). A stream may start at ``response.queued``
  or, when resumed, in the middle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from msgspec import structs

from .types.responses import (
    Response,
    ResponseContentPart,
    ResponseError,
    ResponseErrorEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItem,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseRefusalDeltaEvent,
    ResponseRefusalDoneEvent,
    ResponseStreamEvent,
    ResponseSummaryPart,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
    _ItemEvent,
    _PartEvent,
    _ResponseEvent,
)

__all__ = ["ResponseAccumulator"]


class _Part:
    __slots__ = ("annotations", "deltas", "kind", "logprobs", "text")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.deltas: list[str] = []
        self.text: str | None = None  # from a .done event
        self.logprobs: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []


class _Item:
    __slots__ = ("arguments", "arguments_done", "item", "parts", "summary")

    def __init__(self, item: ResponseOutputItem) -> None:
        self.item = item
        self.parts: dict[int, _Part] = {}
        self.summary: dict[int, _Part] = {}
        self.arguments: list[str] = []
        self.arguments_done: str | None = None

    def part(self, index: int | None, kind: str, table: str = "parts") -> _Part:
        parts: dict[int, _Part] = getattr(self, table)
        key = 0 if index is None else index
        part = parts.get(key)
        if part is None:
            part = parts[key] = _Part(kind)
        return part

    def build(self) -> ResponseOutputItem:
        item = self.item
        changes: dict[str, Any] = {}
        if self.arguments:
            changes["arguments"] = "".join(self.arguments)
        elif self.arguments_done is not None and not item.arguments:
            changes["arguments"] = self.arguments_done
        if self.parts:
            changes["content"] = _merge_parts(item.content or [], self.parts)
        if self.summary:
            changes["summary"] = _merge_summary(item.summary or [], self.summary)
        return structs.replace(item, **changes) if changes else item


def _text_of(part: _Part) -> str | None:
    return "".join(part.deltas) if part.deltas else part.text


def _merge_parts(
    content: list[ResponseContentPart], parts: dict[int, _Part]
) -> list[ResponseContentPart]:
    merged = list(content)
    for index in sorted(parts):
        state = parts[index]
        while len(merged) <= index:
            merged.append(ResponseContentPart(type=state.kind))
        old = merged[index]
        changes: dict[str, Any] = {}
        text = _text_of(state)
        if text is not None:
            changes["refusal" if old.type == "refusal" else "text"] = text
        if state.logprobs and not old.logprobs:
            changes["logprobs"] = state.logprobs
        if state.annotations and not old.annotations:
            changes["annotations"] = state.annotations
        merged[index] = structs.replace(old, **changes) if changes else old
    return merged


def _merge_summary(
    summary: list[ResponseSummaryPart], parts: dict[int, _Part]
) -> list[ResponseSummaryPart]:
    merged = list(summary)
    for index in sorted(parts):
        while len(merged) <= index:
            merged.append(ResponseSummaryPart())
        text = _text_of(parts[index])
        if text is not None:
            merged[index] = structs.replace(merged[index], text=text)
    return merged


class ResponseAccumulator:
    """Builds the final :class:`Response` from its stream events, in linear time."""

    __slots__ = ("_by_id", "_handlers", "_items", "error", "events", "last_sequence", "response")

    def __init__(self) -> None:
        self.events = 0  # added so far
        self.last_sequence: int | None = None  # of the last event added (counted on)
        self.response: Response | None = None  # the latest whole response received
        self.error: ResponseErrorEvent | None = None
        self._items: dict[int, _Item] = {}
        self._by_id: dict[str, _Item] = {}
        handlers: dict[type[Any], Callable[[Any], None]] = {
            ResponseTextDeltaEvent: self._text_delta,
            ResponseRefusalDeltaEvent: self._refusal_delta,
            ResponseReasoningTextDeltaEvent: self._reasoning_delta,
            ResponseFunctionCallArgumentsDeltaEvent: self._arguments_delta,
            ResponseReasoningSummaryTextDeltaEvent: self._summary_delta,
            ResponseOutputItemAddedEvent: self._item_event,
            ResponseOutputItemDoneEvent: self._item_event,
            ResponseTextDoneEvent: self._text_done,
            ResponseRefusalDoneEvent: self._refusal_done,
            ResponseReasoningTextDoneEvent: self._reasoning_done,
            ResponseFunctionCallArgumentsDoneEvent: self._arguments_done,
            ResponseReasoningSummaryTextDoneEvent: self._summary_done,
            ResponseReasoningSummaryPartAddedEvent: self._summary_part,
            ResponseReasoningSummaryPartDoneEvent: self._summary_part,
            ResponseOutputTextAnnotationAddedEvent: self._annotation,
            ResponseErrorEvent: self._error,
        }
        for response_event in _ResponseEvent.__subclasses__():
            handlers[response_event] = self._response_event
        for part_event in _PartEvent.__subclasses__():
            handlers[part_event] = self._part_event
        self._handlers = handlers

    def add(self, event: ResponseStreamEvent) -> None:
        self.events += 1
        seq = event.sequence_number
        if seq is not None:
            self.last_sequence = seq
        elif self.last_sequence is not None:  # unnumbered: the next one (see _protocol)
            self.last_sequence += 1
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    @property
    def usage(self) -> ResponseUsage | None:
        return None if self.response is None else self.response.usage

    def snapshot(self) -> Response:
        base = self.response if self.response is not None else Response(status="in_progress")
        changes: dict[str, Any] = {}
        if self._items:
            changes["output"] = [self._items[i].build() for i in sorted(self._items)]
        if self.error is not None and base.error is None:
            code, message = _error_fields(self.error)
            changes["error"] = ResponseError(code=code, message=message or "")
        return structs.replace(base, **changes) if changes else base

    def text(self) -> str:
        """The output text received so far."""
        return self.snapshot().output_text

    # -- locating the item an event is about ------------------------------------------

    def _item(self, output_index: int | None, item_id: str | None) -> _Item:
        if output_index is not None:
            state = self._items.get(output_index)
            if state is None:
                state = self._items[output_index] = _Item(ResponseOutputItem(id=item_id))
            if item_id is not None:
                self._by_id.setdefault(item_id, state)
            return state
        if item_id is not None:
            state = self._by_id.get(item_id)
            if state is None:
                state = self._by_id[item_id] = self._new_item(ResponseOutputItem(id=item_id))
            return state
        if self._items:
            return self._items[max(self._items)]
        return self._new_item(ResponseOutputItem())

    def _new_item(self, item: ResponseOutputItem) -> _Item:
        index = max(self._items) + 1 if self._items else 0
        state = self._items[index] = _Item(item)
        return state

    # -- handlers ----------------------------------------------------------------------

    def _response_event(self, event: _ResponseEvent) -> None:
        self.response = event.response

    def _error(self, event: ResponseErrorEvent) -> None:
        self.error = event

    def _item_event(self, event: _ItemEvent) -> None:
        item = event.item
        index = event.output_index
        if index is None and item.id is not None and item.id in self._by_id:
            state = self._by_id[item.id]
        elif index is None:
            state = self._new_item(item)
        else:
            state = self._item(index, item.id)
        state.item = item
        if item.id is not None:
            self._by_id[item.id] = state

    def _part_event(self, event: _PartEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        part = event.part
        index = 0 if event.content_index is None else event.content_index
        content = list(state.item.content or [])
        while len(content) <= index:
            content.append(ResponseContentPart(type=part.type))
        content[index] = part
        state.item = structs.replace(state.item, content=content)

    def _text_delta(self, event: ResponseTextDeltaEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        part = state.part(event.content_index, "output_text")
        part.deltas.append(event.delta)
        if event.logprobs:
            part.logprobs.extend(event.logprobs)

    def _refusal_delta(self, event: ResponseRefusalDeltaEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        state.part(event.content_index, "refusal").deltas.append(event.delta)

    def _reasoning_delta(self, event: ResponseReasoningTextDeltaEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        state.part(event.content_index, "reasoning_text").deltas.append(event.delta)

    def _arguments_delta(self, event: ResponseFunctionCallArgumentsDeltaEvent) -> None:
        self._item(event.output_index, event.item_id).arguments.append(event.delta)

    def _summary_delta(self, event: ResponseReasoningSummaryTextDeltaEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        state.part(event.summary_index, "summary_text", "summary").deltas.append(event.delta)

    def _text_done(self, event: ResponseTextDoneEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        state.part(event.content_index, "output_text").text = event.text

    def _refusal_done(self, event: ResponseRefusalDoneEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        state.part(event.content_index, "refusal").text = event.refusal

    def _reasoning_done(self, event: ResponseReasoningTextDoneEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        state.part(event.content_index, "reasoning_text").text = event.text

    def _arguments_done(self, event: ResponseFunctionCallArgumentsDoneEvent) -> None:
        self._item(event.output_index, event.item_id).arguments_done = event.arguments

    def _summary_done(self, event: ResponseReasoningSummaryTextDoneEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        state.part(event.summary_index, "summary_text", "summary").text = event.text

    def _summary_part(self, event: ResponseReasoningSummaryPartAddedEvent) -> None:
        state = self._item(event.output_index, event.item_id)
        part = state.part(event.summary_index, "summary_text", "summary")
        if part.text is None and event.part.text:
            part.text = event.part.text

    def _annotation(self, event: ResponseOutputTextAnnotationAddedEvent) -> None:
        if event.annotation is not None:
            state = self._item(event.output_index, event.item_id)
            state.part(event.content_index, "output_text").annotations.append(event.annotation)


def _error_fields(event: ResponseErrorEvent) -> tuple[str | None, str | None]:
    """``code`` and ``message`` of an error event, nested (OpenAI) or flat."""
    inner = event.error or {}
    code = inner.get("code", event.code)
    message = inner.get("message", event.message)
    return (
        None if code is None else str(code),
        message if isinstance(message, str) else None,
    )
