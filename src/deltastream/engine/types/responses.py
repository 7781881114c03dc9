"""Responses API objects: the ``response`` object and every event of its stream.

Stream events form one msgspec tagged union on ``type``, so an event's bytes decode
into its class in a single pass. Every field a server may leave out has a default
(llama.cpp, for one, sends no ``output_index`` or ``sequence_number``). An event whose
``type`` the union does not know decodes as :class:`UnknownEvent`, keeping its JSON.

Output items share one tolerant type, :class:`ResponseOutputItem`, whose fields cover
messages, function calls, reasoning and the built-in tool calls; ``type`` tells which.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec

from ._base import BaseModel, RawModel

__all__ = [
    "EVENT_TYPES",
    "InputTokensDetails",
    "OutputTokensDetails",
    "Response",
    "ResponseAudioDeltaEvent",
    "ResponseAudioDoneEvent",
    "ResponseAudioTranscriptDeltaEvent",
    "ResponseAudioTranscriptDoneEvent",
    "ResponseCodeInterpreterCallCodeDeltaEvent",
    "ResponseCodeInterpreterCallCodeDoneEvent",
    "ResponseCompletedEvent",
    "ResponseContentPart",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseCreatedEvent",
    "ResponseCustomToolCallInputDeltaEvent",
    "ResponseCustomToolCallInputDoneEvent",
    "ResponseError",
    "ResponseErrorEvent",
    "ResponseEventUnion",
    "ResponseFailedEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseImageGenCallPartialImageEvent",
    "ResponseInProgressEvent",
    "ResponseIncompleteDetails",
    "ResponseIncompleteEvent",
    "ResponseMcpCallArgumentsDeltaEvent",
    "ResponseMcpCallArgumentsDoneEvent",
    "ResponseOutputItem",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseOutputTextAnnotationAddedEvent",
    "ResponseQueuedEvent",
    "ResponseReasoningSummaryPartAddedEvent",
    "ResponseReasoningSummaryPartDoneEvent",
    "ResponseReasoningSummaryTextDeltaEvent",
    "ResponseReasoningSummaryTextDoneEvent",
    "ResponseReasoningTextDeltaEvent",
    "ResponseReasoningTextDoneEvent",
    "ResponseRefusalDeltaEvent",
    "ResponseRefusalDoneEvent",
    "ResponseStreamEvent",
    "ResponseSummaryPart",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "ResponseUsage",
    "UnknownEvent",
]


class InputTokensDetails(BaseModel, kw_only=True):
    cached_tokens: int | None = None


class OutputTokensDetails(BaseModel, kw_only=True):
    reasoning_tokens: int | None = None


class ResponseUsage(BaseModel, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None


class ResponseError(BaseModel, kw_only=True):
    code: str | int | None = None
    message: str = ""


class ResponseIncompleteDetails(BaseModel, kw_only=True):
    reason: str | None = None


class ResponseContentPart(BaseModel, kw_only=True):
    """A part of a message's (or reasoning item's) content: ``output_text``,
    ``refusal``, ``reasoning_text``..."""

    type: str = "output_text"
    text: str | None = None
    refusal: str | None = None
    annotations: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None


class ResponseSummaryPart(BaseModel, kw_only=True):
    type: str = "summary_text"
    text: str = ""


class ResponseOutputItem(BaseModel, kw_only=True):
    """One output item; the fields that apply depend on ``type``."""

    type: str = "message"
    id: str | None = None
    status: str | None = None
    role: str | None = None
    content: list[ResponseContentPart] | None = None
    name: str | None = None
    call_id: str | None = None
    arguments: str | None = None
    input: str | None = None  # custom tool calls
    summary: list[ResponseSummaryPart] | None = None
    encrypted_content: str | None = None
    action: dict[str, Any] | None = None  # web search, computer use
    queries: list[str] | None = None  # file search
    results: list[Any] | None = None
    code: str | None = None  # code interpreter
    outputs: list[Any] | None = None
    container_id: str | None = None
    result: str | None = None  # image generation (base64)
    server_label: str | None = None  # MCP
    output: str | None = None
    error: Any = None


class Response(RawModel, kw_only=True):
    id: str = ""
    object: str = "response"
    created_at: float | None = None
    status: str | None = None
    model: str = ""
    output: list[ResponseOutputItem] = []
    usage: ResponseUsage | None = None
    error: ResponseError | None = None
    incomplete_details: ResponseIncompleteDetails | None = None
    background: bool | None = None
    previous_response_id: str | None = None

    @property
    def output_text(self) -> str:
        """The text of every ``output_text`` part of every message, in output order."""
        return "".join(
            part.text or ""
            for item in self.output
            if item.type == "message"
            for part in item.content or ()
            if part.type == "output_text"
        )


# -- stream events ---------------------------------------------------------------------


class _Event(RawModel, kw_only=True, tag_field="type"):
    sequence_number: int | None = None

    @property
    def type(self) -> str:
        tag: str = self.__struct_config__.tag  # type: ignore[assignment]
        return tag


class _ResponseEvent(_Event, kw_only=True):
    response: Response = msgspec.field(default_factory=Response)


class ResponseCreatedEvent(_ResponseEvent, kw_only=True, tag="response.created"):
    pass


class ResponseQueuedEvent(_ResponseEvent, kw_only=True, tag="response.queued"):
    pass


class ResponseInProgressEvent(_ResponseEvent, kw_only=True, tag="response.in_progress"):
    pass


class ResponseCompletedEvent(_ResponseEvent, kw_only=True, tag="response.completed"):
    pass


class ResponseFailedEvent(_ResponseEvent, kw_only=True, tag="response.failed"):
    pass


class ResponseIncompleteEvent(_ResponseEvent, kw_only=True, tag="response.incomplete"):
    pass


class ResponseErrorEvent(_Event, kw_only=True, tag="error"):
    """An error inside the stream. OpenAI nests the fields under ``error``; older
    servers put them at the top level."""

    code: str | int | None = None
    message: str | None = None
    param: str | None = None
    error: dict[str, Any] | None = None


class _ItemEvent(_Event, kw_only=True):
    output_index: int | None = None
    item: ResponseOutputItem = msgspec.field(default_factory=ResponseOutputItem)


class ResponseOutputItemAddedEvent(_ItemEvent, kw_only=True, tag="response.output_item.added"):
    pass


class ResponseOutputItemDoneEvent(_ItemEvent, kw_only=True, tag="response.output_item.done"):
    pass


class _InItemEvent(_Event, kw_only=True):
    item_id: str | None = None
    output_index: int | None = None


class _PartEvent(_InItemEvent, kw_only=True):
    content_index: int | None = None
    part: ResponseContentPart = msgspec.field(default_factory=ResponseContentPart)


class ResponseContentPartAddedEvent(_PartEvent, kw_only=True, tag="response.content_part.added"):
    pass


class ResponseContentPartDoneEvent(_PartEvent, kw_only=True, tag="response.content_part.done"):
    pass


class _ContentDeltaEvent(_InItemEvent, kw_only=True):
    content_index: int | None = None
    delta: str = ""


class ResponseTextDeltaEvent(_ContentDeltaEvent, kw_only=True, tag="response.output_text.delta"):
    logprobs: list[dict[str, Any]] | None = None


class ResponseTextDoneEvent(_InItemEvent, kw_only=True, tag="response.output_text.done"):
    content_index: int | None = None
    text: str = ""
    logprobs: list[dict[str, Any]] | None = None


class ResponseOutputTextAnnotationAddedEvent(
    _InItemEvent, kw_only=True, tag="response.output_text.annotation.added"
):
    content_index: int | None = None
    annotation_index: int | None = None
    annotation: dict[str, Any] | None = None


class ResponseRefusalDeltaEvent(_ContentDeltaEvent, kw_only=True, tag="response.refusal.delta"):
    pass


class ResponseRefusalDoneEvent(_InItemEvent, kw_only=True, tag="response.refusal.done"):
    content_index: int | None = None
    refusal: str = ""


class ResponseFunctionCallArgumentsDeltaEvent(
    _InItemEvent, kw_only=True, tag="response.function_call_arguments.delta"
):
    delta: str = ""


class ResponseFunctionCallArgumentsDoneEvent(
    _InItemEvent, kw_only=True, tag="response.function_call_arguments.done"
):
    arguments: str = ""
    name: str | None = None


class ResponseCustomToolCallInputDeltaEvent(
    _InItemEvent, kw_only=True, tag="response.custom_tool_call_input.delta"
):
    delta: str = ""


class ResponseCustomToolCallInputDoneEvent(
    _InItemEvent, kw_only=True, tag="response.custom_tool_call_input.done"
):
    input: str = ""


class _SummaryEvent(_InItemEvent, kw_only=True):
    summary_index: int | None = None


class ResponseReasoningSummaryPartAddedEvent(
    _SummaryEvent, kw_only=True, tag="response.reasoning_summary_part.added"
):
    part: ResponseSummaryPart = msgspec.field(default_factory=ResponseSummaryPart)


class ResponseReasoningSummaryPartDoneEvent(
    _SummaryEvent, kw_only=True, tag="response.reasoning_summary_part.done"
):
    part: ResponseSummaryPart = msgspec.field(default_factory=ResponseSummaryPart)


class ResponseReasoningSummaryTextDeltaEvent(
    _SummaryEvent, kw_only=True, tag="response.reasoning_summary_text.delta"
):
    delta: str = ""


class ResponseReasoningSummaryTextDoneEvent(
    _SummaryEvent, kw_only=True, tag="response.reasoning_summary_text.done"
):
    text: str = ""


class ResponseReasoningTextDeltaEvent(
    _ContentDeltaEvent, kw_only=True, tag="response.reasoning_text.delta"
):
    pass


class ResponseReasoningTextDoneEvent(
    _InItemEvent, kw_only=True, tag="response.reasoning_text.done"
):
    content_index: int | None = None
    text: str = ""


class ResponseAudioDeltaEvent(_Event, kw_only=True, tag="response.audio.delta"):
    delta: str = ""


class ResponseAudioDoneEvent(_Event, kw_only=True, tag="response.audio.done"):
    pass


class ResponseAudioTranscriptDeltaEvent(
    _Event, kw_only=True, tag="response.audio.transcript.delta"
):
    delta: str = ""


class ResponseAudioTranscriptDoneEvent(_Event, kw_only=True, tag="response.audio.transcript.done"):
    pass


class ResponseCodeInterpreterCallCodeDeltaEvent(
    _InItemEvent, kw_only=True, tag="response.code_interpreter_call_code.delta"
):
    delta: str = ""


class ResponseCodeInterpreterCallCodeDoneEvent(
    _InItemEvent, kw_only=True, tag="response.code_interpreter_call_code.done"
):
    code: str = ""


class ResponseImageGenCallPartialImageEvent(
    _InItemEvent, kw_only=True, tag="response.image_generation_call.partial_image"
):
    partial_image_index: int | None = None
    partial_image_b64: str = ""


class ResponseMcpCallArgumentsDeltaEvent(
    _InItemEvent, kw_only=True, tag="response.mcp_call_arguments.delta"
):
    delta: str = ""


class ResponseMcpCallArgumentsDoneEvent(
    _InItemEvent, kw_only=True, tag="response.mcp_call_arguments.done"
):
    arguments: str = ""


def _progress_event(tag: str) -> type[_InItemEvent]:
    """A built-in tool's progress event: it carries only the item it is about."""
    name = "Response" + "".join(p.title() for p in tag.replace(".", "_").split("_")[1:]) + "Event"
    cls = msgspec.defstruct(name, [], bases=(_InItemEvent,), kw_only=True, tag=tag)
    return cast("type[_InItemEvent]", cls)


_PROGRESS_TAGS = [
    f"response.{tool}.{stage}"
    for tool, stages in {
        "web_search_call": ("in_progress", "searching", "completed"),
        "file_search_call": ("in_progress", "searching", "completed"),
        "code_interpreter_call": ("in_progress", "interpreting", "completed"),
        "image_generation_call": ("in_progress", "generating", "completed"),
        "mcp_call": ("in_progress", "completed", "failed"),
        "mcp_list_tools": ("in_progress", "completed", "failed"),
    }.items()
    for stage in stages
]
_PROGRESS_EVENTS = [_progress_event(tag) for tag in _PROGRESS_TAGS]

_EVENT_CLASSES: list[type[_Event]] = [
    ResponseCreatedEvent,
    ResponseQueuedEvent,
    ResponseInProgressEvent,
    ResponseCompletedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseErrorEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseRefusalDeltaEvent,
    ResponseRefusalDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseCustomToolCallInputDeltaEvent,
    ResponseCustomToolCallInputDoneEvent,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCodeInterpreterCallCodeDeltaEvent,
    ResponseCodeInterpreterCallCodeDoneEvent,
    ResponseImageGenCallPartialImageEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    *_PROGRESS_EVENTS,
]

#: Every ``type`` the union decodes into its own class.
EVENT_TYPES: frozenset[str] = frozenset(str(cls.__struct_config__.tag) for cls in _EVENT_CLASSES)

#: The union a stream event decodes into (see ``_decode.decode_response_event``).
ResponseEventUnion: Any = _EVENT_CLASSES[0]
for _cls in _EVENT_CLASSES[1:]:
    ResponseEventUnion = ResponseEventUnion | _cls


class UnknownEvent(RawModel, kw_only=True):
    """An event whose ``type`` is not modelled; ``data`` is its whole JSON object."""

    type: str = ""
    data: dict[str, Any] = {}
    sequence_number: int | None = None


ResponseStreamEvent = _Event | UnknownEvent
