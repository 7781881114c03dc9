"""Turning one event's bytes into a typed object, tolerant of what real servers send.

The fast path is one msgspec decode straight into the typed Struct. Only when that
fails validation (a server sent a shape the types do not describe, such as Mistral's
content given as a list of parts) does the slow path run: parse to Python objects,
normalise the known variants, and convert leniently. Malformed JSON is not tolerated:
it raises :class:`EventDecodeError` with the offending bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec

from .types._base import RawModel
from .types.chat import ChatCompletion, ChatCompletionChunk
from .types.responses import (
    EVENT_TYPES,
    Response,
    ResponseEventUnion,
    ResponseStreamEvent,
    UnknownEvent,
)

__all__ = [
    "EventDecodeError",
    "InBandError",
    "content_parts",
    "decode_chat_event",
    "decode_chat_chunk",
    "decode_chat_completion",
    "decode_response",
    "decode_response_event",
    "in_band_error",
    "normalise",
    "parse_json",
    "repair_response_event",
]

T = TypeVar("T", bound=RawModel)

_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_completion_decoder = msgspec.json.Decoder(ChatCompletion)
_any_decoder = msgspec.json.Decoder()
_event_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(ResponseEventUnion)
_response_decoder = msgspec.json.Decoder(Response)


class EventDecodeError(ValueError):
    """The data could not be decoded; ``data`` holds it."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(message)
        self.data = data


class InBandError(Exception):
    """The event carries an error report (a top-level ``error``); ``chunk`` is the rest
    of it, decoded."""

    def __init__(self, chunk: Any) -> None:
        super().__init__("an error report in the stream")
        self.chunk = chunk


def decode_chat_event(raw: bytes) -> ChatCompletionChunk:
    """A stream event as a chunk; :class:`InBandError` if it carries an error report."""
    try:
        chunk = _chunk_decoder.decode(raw)
    except msgspec.ValidationError:
        chunk = _decode_leniently(raw, ChatCompletionChunk)
    except (msgspec.DecodeError, UnicodeDecodeError):  # see parse_json
        chunk = _decode_leniently(raw, ChatCompletionChunk)
    setattr(chunk, "_raw", raw)  # noqa: B010 - RawModel has a slot for exactly this
    if chunk._error:
        raise InBandError(chunk)
    return chunk


def decode_chat_chunk(raw: bytes) -> ChatCompletionChunk:
    """One chunk, whatever else it carries."""
    try:
        return decode_chat_event(raw)
    except InBandError as report:
        chunk: ChatCompletionChunk = report.chunk
        return chunk


def decode_chat_completion(raw: bytes) -> ChatCompletion:
    try:
        completion = _completion_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        completion = _decode_leniently(raw, ChatCompletion, "response body")
    setattr(completion, "_raw", raw)  # noqa: B010
    return completion


def decode_response_event(raw: bytes, event_name: str | None = None) -> ResponseStreamEvent:
    """One Responses stream event. A ``type`` the union does not know (or none at all)
    gives an :class:`UnknownEvent`; a known type with a wrong shape is converted
    leniently, and only malformed JSON raises."""
    try:
        event: ResponseStreamEvent = _event_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        event = _decode_event_slowly(raw, event_name)
    setattr(event, "_raw", raw)  # noqa: B010
    return event


def repair_response_event(raw: bytes, event_name: str | None = None) -> ResponseStreamEvent:
    """A Responses event that :func:`decode_response_event` refuses for a field of the
    wrong type, with each such field left out (its type's default then), as long as
    that makes it fit: for a face that hands the event over built leniently from its
    own bytes (openai's way), while the engine accumulates what it could read.
    :class:`EventDecodeError` if it still does not fit, or is not JSON."""
    obj = parse_json(raw, "stream event")
    if isinstance(obj, dict) and obj.get("type") is None and event_name:
        obj["type"] = event_name
    for _ in range(_REPAIRS):
        try:
            event: ResponseStreamEvent = msgspec.convert(obj, ResponseEventUnion, strict=False)
        except msgspec.ValidationError as exc:
            if not _leave_out(obj, str(exc)):
                raise EventDecodeError(f"event is not a valid event: {exc}", raw) from None
            continue
        setattr(event, "_raw", raw)  # noqa: B010
        return event
    raise EventDecodeError("event is not a valid event: too many fields of the wrong type", raw)


_REPAIRS = 16
# Where msgspec says a value is wrong: "... - at `$.response.usage.input_tokens`".
_AT = re.compile(r" - at `\$((?:\.[A-Za-z_]\w*|\[\d+\])*)`$")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")


def _leave_out(obj: Any, error: str) -> bool:
    """Take out of ``obj`` the field ``error`` (a msgspec ValidationError) is about (for
    a missing required field: the object that misses it); for an item of a list, the
    field that holds the list. False if there is no such field: the event itself."""
    at = _AT.search(error)
    if at is None:
        return False
    steps = _STEP.findall(at.group(1))
    while steps and not steps[-1][0]:
        steps.pop()  # an item of a list: the list's own field goes
    if not steps:
        return False
    parent = obj
    for key, index in steps[:-1]:
        try:
            parent = parent[key] if key else parent[int(index)]
        except (KeyError, IndexError, TypeError):
            return False
    if not isinstance(parent, dict) or steps[-1][0] not in parent:
        return False
    del parent[steps[-1][0]]
    return True


def _decode_event_slowly(raw: bytes, event_name: str | None) -> ResponseStreamEvent:
    obj = parse_json(raw, "stream event")
    if not isinstance(obj, dict):
        raise EventDecodeError("stream event is not a JSON object", raw)
    kind = obj.get("type")
    if kind is None and event_name:  # a server that names events only in `event:`
        kind = obj["type"] = event_name
    if isinstance(kind, str) and kind in EVENT_TYPES:
        try:
            converted: ResponseStreamEvent = msgspec.convert(obj, ResponseEventUnion, strict=False)
            return converted
        except msgspec.ValidationError as exc:
            raise EventDecodeError(f"event is not a valid {kind!r} event: {exc}", raw) from None
    number = obj.get("sequence_number")
    return UnknownEvent(
        type=kind if isinstance(kind, str) else "",
        data=obj,
        sequence_number=number if isinstance(number, int) else None,
    )


def decode_response(raw: bytes) -> Response:
    try:
        response = _response_decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        response = _decode_leniently(raw, Response, "response body")
    setattr(response, "_raw", raw)  # noqa: B010
    return response


def in_band_error(raw: bytes) -> dict[str, Any] | None:
    """The payload if this event is an error report (a top-level ``error`` object)."""
    if raw.find(b'"error"') < 0:  # a cheap test first: the key must appear unescaped
        return None
    try:
        obj = _any_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        # Bad UTF-8 is a UnicodeDecodeError before msgspec 0.23 and a DecodeError since.
        # An error report with a garbled message is still one; anything else that does
        # not parse is not a report, and decoding the event will say what is wrong.
        try:
            obj = _any_decoder.decode(raw.decode("utf-8", "replace").encode())
        except msgspec.DecodeError:
            return None
    # As openai reads it: an empty or false ``error`` is not a report.
    if isinstance(obj, dict) and obj.get("error"):
        return obj
    return None


def _decode_leniently(raw: bytes, type_: type[T], what: str = "stream event") -> T:
    obj = parse_json(raw, what)
    try:
        return msgspec.convert(normalise(obj), type_, strict=False)
    except msgspec.ValidationError as exc:
        name = type_.__name__
        raise EventDecodeError(f"event is not a valid {name}: {exc}", raw) from None


def parse_json(raw: bytes, what: str = "stream event") -> Any:
    """``raw`` as JSON, or :class:`EventDecodeError` saying what is malformed.

    msgspec first; what it refuses, Python's own parser reads as openai (which parses
    with ``json``) does: a lone UTF-16 surrogate escape, as servers that split an
    emoji's surrogate pair across two events send. Invalid UTF-8 is refused by both."""
    try:
        return _any_decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        try:
            return json.loads(raw, parse_constant=_not_json)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
            raise EventDecodeError(f"malformed JSON in {what}: {exc}", raw) from None


def normalise(obj: Any) -> Any:
    """Rewrite known provider variants into the shape the types describe."""
    if not isinstance(obj, dict):
        return obj
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return obj  # conversion will report the wrong shape
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if "delta" in choice and choice["delta"] is None:
            choice["delta"] = {}  # "delta": null (sent with a finish reason): nothing new
        for key in ("delta", "message"):
            part = choice.get(key)
            if isinstance(part, dict) and isinstance(part.get("content"), list):
                _flatten_content_parts(part)
    return obj


def _flatten_content_parts(message: dict[str, Any]) -> None:
    """Content as a list of typed parts (Mistral): text parts become ``content``,
    thinking parts become ``thinking``."""
    text, thinking = content_parts(message["content"])
    message["content"] = "".join(text) if text else None
    if thinking:
        before = message.get("thinking")
        message["thinking"] = (before if isinstance(before, str) else "") + "".join(thinking)


def content_parts(parts: list[Any]) -> tuple[list[str], list[str]]:
    """The text of content given as a list of typed parts (Mistral's): that of its text
    parts, and that of its thinking parts. Parts of other kinds carry no text."""
    text: list[str] = []
    thinking: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif kind == "thinking":
            thinking.extend(_texts(part.get("thinking")))
    return text, thinking


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []


def _not_json(name: str) -> Any:
    """``json.loads`` reads NaN and Infinity, which JSON does not have: refused here."""
    raise ValueError(f"{name} is not JSON")
