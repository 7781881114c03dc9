"""Chat Completions wire format, byte for byte as OpenAI sends it.

Compact JSON with keys in OpenAI's order and UTF-8 left unescaped; one ``data:`` line
per event, events separated by a blank line; ``data: [DONE]`` last.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Final

import msgspec

__all__ = [
    "DONE",
    "EVENT_STREAM",
    "ChunkFactory",
    "encode_json",
    "error_event",
    "random_id",
    "sse_event",
    "stable_id",
    "usage",
]

EVENT_STREAM: Final = "text/event-stream; charset=utf-8"
DONE: Final = b"data: [DONE]\n\n"
SYSTEM_FINGERPRINT: Final = "fp_d5c0ffee42"

_encoder: Final = msgspec.json.Encoder()


def encode_json(value: object) -> bytes:
    return _encoder.encode(value)


def sse_event(value: object, *, event: str | None = None) -> bytes:
    """One event block carrying ``value`` as JSON on a single data line."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + _encoder.encode(value) + b"\n\n"


def error_event(message: str, *, responses_api: bool = False, code: str = "injected") -> bytes:
    """An in-band ``event: error``; the Responses API shape differs from Chat's."""
    if responses_api:
        payload: object = {"type": "error", "code": code, "message": message, "param": None}
    else:
        payload = {"error": {"message": message, "type": "server_error", "code": code}}
    return sse_event(payload, event="error")


def random_id(prefix: str, length: int = 29) -> str:
    return prefix + uuid.uuid4().hex[:length]


def stable_id(prefix: str, seed: bytes, length: int = 29) -> str:
    """An OpenAI-looking id derived from ``seed``: same seed, same id."""
    digest = hashlib.sha256(seed).hexdigest()
    return prefix + digest[:length]


class ChunkFactory:
    """Builds ``chat.completion.chunk`` objects sharing one id, timestamp and model."""

    def __init__(
        self, completion_id: str, created: int, model: str, *, usage_slot: bool = False
    ) -> None:
        self.id = completion_id
        self.created = created
        self.model = model
        # With stream_options.include_usage, OpenAI sends "usage": null on every chunk
        # before the usage chunk.
        self.usage_slot = usage_slot

    def chunk(
        self, index: int, delta: Mapping[str, object], finish_reason: str | None = None
    ) -> dict[str, object]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._envelope([choice])

    def usage_chunk(self, usage: Mapping[str, object]) -> dict[str, object]:
        body = self._envelope([])
        body["usage"] = usage
        return body

    def _envelope(self, choices: list[dict[str, object]]) -> dict[str, object]:
        body: dict[str, object] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        if self.usage_slot:
            body["usage"] = None
        return body

    def completion(
        self, choices: list[dict[str, object]], usage: Mapping[str, object]
    ) -> dict[str, object]:
        """The non-streamed ``chat.completion`` object."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": usage,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, object]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
