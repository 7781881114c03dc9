"""Turning one event's bytes into a typed object, tolerant of what real servers send.

The fast path is one msgspec decode straight into the typed Struct. Only when that
fails validation (a server sent a shape the types do not describe, such as Mistral's
content given as a list of parts) does the slow path run: parse to Python objects,
normalise the known variants, and convert leniently. Malformed JSON is not tolerated:
it raises :class:`EventDecodeError` with the offending bytes.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from .types._base import RawModel
from .types.chat import ChatCompletion, ChatCompletionChunk

__all__ = ["EventDecodeError", "decode_chat_chunk", "decode_chat_completion", "in_band_error"]

T = TypeVar("T", bound=RawModel)

_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_completion_decoder = msgspec.json.Decoder(ChatCompletion)
_any_decoder = msgspec.json.Decoder()


class EventDecodeError(ValueError):
    """The data could not be decoded; ``data`` holds it."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(message)
        self.data = data


def decode_chat_chunk(raw: bytes) -> ChatCompletionChunk:
    try:
        chunk = _chunk_decoder.decode(raw)
    except msgspec.ValidationError:
        chunk = _decode_leniently(raw, ChatCompletionChunk)
    except msgspec.DecodeError as exc:
        raise EventDecodeError(f"malformed JSON in stream event: {exc}", raw) from None
    setattr(chunk, "_raw", raw)  # noqa: B010 - RawModel has a __dict__ for exactly this
    return chunk


def decode_chat_completion(raw: bytes) -> ChatCompletion:
    try:
        completion = _completion_decoder.decode(raw)
    except msgspec.ValidationError:
        completion = _decode_leniently(raw, ChatCompletion)
    except msgspec.DecodeError as exc:
        raise EventDecodeError(f"malformed JSON in response body: {exc}", raw) from None
    setattr(completion, "_raw", raw)  # noqa: B010
    return completion


def in_band_error(raw: bytes) -> dict[str, Any] | None:
    """The payload if this event is an error report (a top-level ``error`` object)."""
    if b'"error"' not in raw:  # a cheap test first: the key must appear unescaped
        return None
    try:
        obj = _any_decoder.decode(raw)
    except msgspec.DecodeError:
        return None
    if isinstance(obj, dict) and obj.get("error") is not None:
        return obj
    return None


def _decode_leniently(raw: bytes, type_: type[T]) -> T:
    try:
        obj = _any_decoder.decode(raw)
        return msgspec.convert(_normalise(obj), type_, strict=False)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        name = type_.__name__
        raise EventDecodeError(f"event is not a valid {name}: {exc}", raw) from None


def _normalise(obj: Any) -> Any:
    """Rewrite known provider variants into the shape the types describe."""
    if not isinstance(obj, dict):
        return obj
    for choice in obj.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        for key in ("delta", "message"):
            part = choice.get(key)
            if isinstance(part, dict) and isinstance(part.get("content"), list):
                _flatten_content_parts(part)
    return obj


def _flatten_content_parts(message: dict[str, Any]) -> None:
    """Content as a list of typed parts (Mistral): text parts become ``content``,
    thinking parts become ``thinking``."""
    text: list[str] = []
    thinking: list[str] = []
    for part in message["content"]:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif kind == "thinking":
            thinking.extend(_texts(part.get("thinking")))
    message["content"] = "".join(text) if text else None
    if thinking:
        message["thinking"] = (message.get("thinking") or "") + "".join(thinking)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return []
