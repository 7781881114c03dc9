"""The bytes the load server sends: realistic ``chat.completion.chunk`` events, pre-rendered.

A stream of ``n`` chunks is one role chunk, ``n - 3`` content chunks, one finish chunk
and one usage chunk (the shape OpenAI sends with ``stream_options.include_usage``),
then ``data: [DONE]``. Every SSE event goes out as its own HTTP/1.1 chunk, as a real
server that flushes each token does; the bulk mode packs many of them into one write,
which is what a client that reads as fast as it can sees when it falls behind.

In paced mode the chunk ``id`` carries the server's send time
(``chatcmpl-t<time.monotonic_ns()>``; CLOCK_MONOTONIC is shared by every process on
the machine), so a client can measure the latency it adds.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any, Final

__all__ = [
    "BLOCK_EVENTS",
    "BODY_END",
    "MIN_CHUNKS",
    "STREAM_ID",
    "PacedEvents",
    "bulk_writes",
    "paced_events",
    "frame",
    "response_head",
    "send_time_ns",
]

MODEL: Final = "gpt-4o-mini-2024-07-18"
FINGERPRINT: Final = "fp_06737a9306"
CREATED: Final = 1741569952
STREAM_ID: Final = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
MIN_CHUNKS: Final = 3  # role, finish, usage
BLOCK_EVENTS: Final = 200  # content events per pre-rendered write (~64 KB)
BODY_END: Final = b"0\r\n\r\n"

_STORY: Final = (
    "Once upon a time, in a quiet workshop at the edge of the city, a small robot named "
    "Pip woke up for the first time. Its sensors flickered, its gears hummed, and it "
    "looked around at the shelves of tools, springs and dusty blueprints. The old "
    "inventor who built it had left a note: \u201cBe curious, be kind, and fix what is "
    "broken.\u201d Pip read the note twice \u2014 then rolled toward the door. \U0001f916"
)
_WORDS: Final = _STORY.split(" ")


def frame(event: bytes) -> bytes:
    """One HTTP/1.1 chunk holding ``event``."""
    return b"%x\r\n%s\r\n" % (len(event), event)


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _chunk(stream_id: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": stream_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


def _usage_chunk(stream_id: str, completion_tokens: int) -> dict[str, Any]:
    payload = _chunk(stream_id, {}, None)
    payload["choices"] = []
    payload["usage"] = {
        "prompt_tokens": 19,
        "completion_tokens": completion_tokens,
        "total_tokens": 19 + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    return payload


def _word(i: int) -> str:
    return ("" if i == 0 else " ") + _WORDS[i % len(_WORDS)]


def _events(stream_id: str, n: int) -> tuple[bytes, list[bytes], bytes, bytes]:
    """Role event, ``n - 3`` content events, finish event, usage event (unframed)."""
    role = _event(_chunk(stream_id, {"role": "assistant", "content": "", "refusal": None}, None))
    content = [_event(_chunk(stream_id, {"content": _word(i)}, None)) for i in range(n - 3)]
    finish = _event(_chunk(stream_id, {}, "stop"))
    usage = _event(_usage_chunk(stream_id, n - 3))
    return role, content, finish, usage


def response_head(extra: str = "") -> bytes:
    return (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/event-stream; charset=utf-8\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Cache-Control: no-cache\r\n"
        "Connection: keep-alive\r\n"
        "openai-processing-ms: 120\r\n"
        "x-request-id: req_3e1b0b6e8b0c4a0f9c1d2e3f4a5b6c7d\r\n"
        f"{extra}\r\n"
    ).encode()


class _Bulk:
    """Everything a bulk stream writes, rendered once at import."""

    def __init__(self) -> None:
        role, content, finish, _ = _events(STREAM_ID, BLOCK_EVENTS + MIN_CHUNKS)
        self.head = response_head() + frame(role + b"\n\n")
        self.events = [event + b"\n\n" for event in content]
        self.framed = [frame(event) for event in self.events]
        self.block = b"".join(self.framed)
        self.coalesced = frame(b"".join(self.events))
        self.finish = frame(finish + b"\n\n")

    def tail(self, n: int) -> bytes:
        usage = _event(_usage_chunk(STREAM_ID, n - MIN_CHUNKS))
        return self.finish + frame(usage + b"\n\n") + frame(b"data: [DONE]\n\n") + BODY_END


_BULK = _Bulk()


def bulk_writes(n: int, *, coalesce: bool = False) -> Iterator[bytes]:
    """The whole response to a bulk request for ``n`` chunks, as ~64 KB writes.

    With ``coalesce`` each write is one HTTP chunk holding ~200 events instead of ~200
    HTTP chunks of one event each: the same SSE bytes, less HTTP framing to parse.
    """
    n = max(n, MIN_CHUNKS)
    content = n - MIN_CHUNKS
    full, rest = divmod(content, BLOCK_EVENTS)
    yield _BULK.head
    block = _BULK.coalesced if coalesce else _BULK.block
    for _ in range(full):
        yield block
    if coalesce:
        yield frame(b"".join(_BULK.events[:rest])) + _BULK.tail(n)
    else:
        yield b"".join(_BULK.framed[:rest]) + _BULK.tail(n)


@functools.cache
def paced_events(n: int) -> PacedEvents:
    return PacedEvents(max(n, MIN_CHUNKS))


class PacedEvents:
    """The events of a paced stream of ``n`` chunks, each stamped when it is sent."""

    def __init__(self, n: int) -> None:
        marker = "chatcmpl-t@"
        role, content, finish, usage = _events(marker, n)
        self._parts = [event.split(marker.encode(), 1) for event in (role, *content, finish)]
        self._parts.append(usage.split(marker.encode(), 1))
        self.count = n

    def stamped(self, i: int, now_ns: int) -> bytes:
        """Event ``i`` (0-based; ``count`` is ``[DONE]``) framed, with ``now_ns`` in its id."""
        if i >= self.count:
            return frame(b"data: [DONE]\n\n") + BODY_END
        before, after = self._parts[i]
        return frame(b"%schatcmpl-t%d%s\n\n" % (before, now_ns, after))


def send_time_ns(chunk_id: str) -> int:
    """The send time a paced chunk id carries."""
    return int(chunk_id[10:])
