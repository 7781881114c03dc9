"""Property-based fuzzing of the decoders (bounded; the long run is ``make fuzz``).

Whatever bytes arrive, in whatever pieces:

- ``SSEDecoder`` raises nothing but ``EventTooLargeError``, gives the same events
  however the bytes are split, and never holds more than ``max_event_size`` bytes
  of unfinished event;
- ``decode_chat_chunk`` / ``decode_chat_completion`` raise nothing but
  ``EventDecodeError``, and whatever they accept can be accumulated and snapshotted;
- ``ChunkStream`` raises nothing but deltastream's own ``APIError`` subclasses.

A per-example deadline stands for "no hang".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltastream.engine._accumulate import ChatAccumulator
from deltastream.engine._decode import (
    EventDecodeError,
    decode_chat_chunk,
    decode_chat_completion,
    in_band_error,
)
from deltastream.engine._protocol import ChunkStream
from deltastream.native import APIError, APIStreamError, StreamDecodeError
from deltastream.sse import EventTooLargeError, ServerSentEvent, SSEDecoder

T = TypeVar("T")

FUZZ = settings(
    max_examples=300,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Bytes that look like SSE more often than uniformly random bytes do.
SSE_TOKENS = st.sampled_from(
    [
        b"data:",
        b"data: ",
        b"event:",
        b"event: error",
        b"id:",
        b"id: 1",
        b"retry:",
        b"retry: 99",
        b":",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\xef\xbb\xbf",
        b"\xe4\xbd\xa0",
        b"\xf0\x9f",
        b"\x00",
        b"[DONE]",
        b'{"error": {"message": "x"}}',
        b'{"choices": [{"delta": {"content": "a"}}]}',
        b"{",
        b'"',
        b" ",
    ]
)
SSE_BYTES = st.one_of(
    st.binary(max_size=400),
    st.lists(st.one_of(SSE_TOKENS, st.binary(max_size=8)), max_size=80).map(b"".join),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def decode_all(
    pieces: list[bytes], limit: int, plain_first: bool = False
) -> tuple[list[ServerSentEvent], bool]:
    """Events from feeding ``pieces``; True if the size limit was hit. ``plain_first``:
    each piece offered to feed_plain first, as ChunkStream does."""
    decoder = SSEDecoder(limit)
    events: list[ServerSentEvent] = []
    for piece in pieces:
        payloads = decoder.feed_plain(piece) if plain_first else None
        if payloads is not None:
            id_, retry = decoder.last_event_id, decoder.retry
            events.extend(ServerSentEvent(data, "message", id_, retry) for data in payloads)
        else:
            try:
                events.extend(decoder.feed(piece))
            except EventTooLargeError as exc:
                events.extend(exc.events)
                return events, True
        _check_bounded(decoder, limit)
    decoder.close()
    return events, False


def _check_bounded(decoder: SSEDecoder, limit: int) -> None:
    state: Any = decoder
    held = state._data if state._joined is None else state._joined
    # The unfinished line and the block's data, as the module docstring promises; the
    # start-of-stream BOM check may hold up to 2 bytes more.
    assert len(state._pending) + len(held) <= max(limit, 2)


@FUZZ
@given(SSE_BYTES, st.lists(st.integers(0, 10**6), max_size=20))
def test_sse_decoder_is_total_and_split_invariant(data: bytes, cuts: list[int]) -> None:
    whole, whole_too_large = decode_all([data], 10**6)
    pieces, pieces_too_large = decode_all(split(data, cuts), 10**6)
    assert not whole_too_large
    assert not pieces_too_large
    assert pieces == whole
    for event in whole:
        assert isinstance(event.data, str)


# Streams of mostly plain events (what SSEDecoder.feed_plain takes), now and then not.
PLAIN_MOSTLY = st.lists(
    st.one_of(
        st.sampled_from([b"data: [DONE]\n\n", b'data: {"a": 1}\n\n', b"data: \n\n"]),
        st.binary(max_size=12).map(lambda payload: b"data: " + payload + b"\n\n"),
        SSE_TOKENS,
    ),
    max_size=40,
).map(b"".join)


@FUZZ
@given(
    st.one_of(SSE_BYTES, PLAIN_MOSTLY),
    st.lists(st.integers(0, 10**6), max_size=20),
    st.sampled_from([8, 64, 10**6]),
)
def test_plain_events_decode_as_feed_decodes_them(data: bytes, cuts: list[int], limit: int) -> None:
    pieces = split(data, cuts)
    assert decode_all(pieces, limit, plain_first=True) == decode_all(pieces, limit)


@FUZZ
@given(SSE_BYTES, st.lists(st.integers(0, 10**6), max_size=20), st.integers(1, 64))
def test_sse_decoder_memory_is_bounded(data: bytes, cuts: list[int], limit: int) -> None:
    events, _ = decode_all(split(data, cuts), limit)
    for event in events:
        assert len(event.raw_data) <= limit


@FUZZ
@given(st.integers(1, 4096), st.integers(1, 200))
def test_sse_decoder_rejects_an_endless_line(limit: int, pieces: int) -> None:
    decoder = SSEDecoder(limit)
    too_large: EventTooLargeError | None = None
    try:
        for _ in range(pieces):
            decoder.feed(b"data: " + b"x" * 97)
            _check_bounded(decoder, limit)
    except EventTooLargeError as exc:
        too_large = exc
    if too_large is None:
        assert pieces * 103 <= limit
    else:
        assert too_large.limit == limit


def decode_or_none(decode: Callable[[bytes], T], raw: bytes) -> T | None:
    """What ``decode`` makes of ``raw``; None if it refused it with EventDecodeError
    (whose ``data`` must be ``raw``)."""
    try:
        return decode(raw)
    except EventDecodeError as exc:
        assert exc.data == raw  # noqa: PT017 - a property over many inputs, not one raise
    return None


@pytest.mark.parametrize("raw", [b'{"choices": 1}', b'{"choices": true}'])
def test_choices_that_are_not_a_list_raise_a_typed_error(raw: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode_chat_chunk(raw)


@pytest.mark.parametrize("thinking", ["5", '["a"]', '{"a": 1}'])
def test_thinking_parts_next_to_a_non_string_thinking_raise_a_typed_error(
    thinking: str,
) -> None:
    raw = (
        '{"choices": [{"delta": {"content": [{"type": "thinking", "thinking": "x"}], '
        f'"thinking": {thinking}}}}}]}}'
    ).encode()
    try:
        chunk = decode_chat_chunk(raw)
    except EventDecodeError:
        return
    assert chunk.choices[0].delta.thinking is not None


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"id": "c\xff"}', StreamDecodeError),
        (b'{"choices": [{"delta": {"content": "\xe4\xbd"}}]}', StreamDecodeError),
        (b'{"error": {"message": "\xff"}}', APIStreamError),  # still an error report
    ],
)
def test_invalid_utf8_in_a_string_is_a_typed_error(raw: bytes, error: type[APIError]) -> None:
    """Invalid UTF-8 inside a JSON string (UnicodeDecodeError from msgspec before 0.23,
    DecodeError since) comes out as one of our typed errors, with ``.partial``."""
    request = httpx2.Request("POST", "http://fuzz/v1/chat/completions")
    core = ChunkStream(httpx2.Response(200, request=request))
    with pytest.raises(error) as caught:
        core.feed(b"data: " + raw + b"\n\n")
    assert caught.value.partial is not None


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"error": {"message": "overloaded"}, "choices": "none"}', APIStreamError),
        (b'{"error": "overloaded", "created": "now"}', APIStreamError),
        (b'{"error": {"message": "overloaded"}, "choices": []}', APIStreamError),
        (b'{"error": null, "choices": "none"}', StreamDecodeError),
    ],
)
def test_an_error_report_is_found_whatever_else_it_holds(raw: bytes, error: type[APIError]) -> None:
    """A top-level ``error`` is an error report even when the rest of the object could
    not be a chunk; ``"error": null`` is not one."""
    request = httpx2.Request("POST", "http://fuzz/v1/chat/completions")
    core = ChunkStream(httpx2.Response(200, request=request))
    core.feed(b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\n')
    with pytest.raises(error) as caught:
        core.feed(b"data: " + raw + b"\n\n")
    assert caught.value.partial is not None
    assert caught.value.partial.choices[0].message.content == "Hi"
    if error is APIStreamError:
        assert "overloaded" in str(caught.value)


# JSON values shaped like chunks: the right keys with values of any type, so that
# both the typed fast path and the lenient slow path get exercised.
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)


def shaped(*keys: str, inner: st.SearchStrategy[Any] = ANY_JSON) -> st.SearchStrategy[Any]:
    return st.one_of(ANY_JSON, st.dictionaries(st.sampled_from(keys), inner, max_size=len(keys)))


TOOL_CALL = shaped("index", "id", "type", "function", inner=shaped("name", "arguments"))
LOGPROB = shaped("token", "logprob", "bytes", "top_logprobs")
DELTA = shaped(
    "role",
    "content",
    "refusal",
    "reasoning_content",
    "reasoning",
    "thinking",
    "audio",
    inner=ANY_JSON,
) | st.fixed_dictionaries(
    {},
    optional={
        "content": st.one_of(
            st.text(max_size=5),
            st.lists(shaped("type", "text", "thinking"), max_size=3),
        ),
        "tool_calls": st.lists(TOOL_CALL, max_size=3) | ANY_JSON,
        "function_call": shaped("name", "arguments"),
        "role": SCALARS,
    },
)
CHOICE = st.fixed_dictionaries(
    {},
    optional={
        "index": st.integers(-5, 10**12) | SCALARS,
        "delta": DELTA,
        "message": DELTA,
        "finish_reason": SCALARS,
        "logprobs": shaped("content", "refusal", inner=st.lists(LOGPROB, max_size=2)),
    },
)
CHUNK = st.fixed_dictionaries(
    {},
    optional={
        "id": SCALARS,
        "object": SCALARS,
        "created": SCALARS,
        "model": SCALARS,
        "choices": st.lists(CHOICE, max_size=3) | ANY_JSON,
        "usage": shaped("prompt_tokens", "completion_tokens", "total_tokens"),
        "error": shaped("message", "code", "type"),
    },
)


@FUZZ
@given(st.lists(CHUNK | ANY_JSON, min_size=1, max_size=6))
def test_chunk_decoder_is_total_and_what_it_accepts_accumulates(values: list[Any]) -> None:
    accumulator = ChatAccumulator()
    for value in values:
        raw = json.dumps(value).encode()
        error = in_band_error(raw)
        assert error is None or isinstance(error, dict)
        chunk = decode_or_none(decode_chat_chunk, raw)
        if chunk is None:
            continue
        accumulator.add(chunk)
        accumulator.snapshot()
        chunk.to_dict()
    snapshot = accumulator.snapshot()
    assert [c.index for c in snapshot.choices] == sorted({c.index for c in snapshot.choices})


@FUZZ
@given(CHUNK | ANY_JSON)
def test_completion_decoder_is_total(value: Any) -> None:
    decode_or_none(decode_chat_completion, json.dumps(value).encode())


@FUZZ
@given(st.binary(max_size=300))
def test_decoders_on_raw_bytes(raw: bytes) -> None:
    in_band_error(raw)
    decode_or_none(decode_chat_chunk, raw)
    decode_or_none(decode_chat_completion, raw)


def _body(values: list[Any], framing: list[bytes]) -> bytes:
    parts = []
    for i, value in enumerate(values):
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        parts.append(framing[i % len(framing)] + data + b"\n\n")
    return b"".join(parts)


@FUZZ
@given(
    st.lists(CHUNK | st.binary(max_size=20) | st.just(b"[DONE]"), max_size=6),
    st.lists(
        st.sampled_from([b"data: ", b"data:", b"event: error\ndata: ", b": c\ndata: "]), min_size=1
    ),
    SSE_BYTES,
    st.lists(st.integers(0, 10**6), max_size=10),
    st.booleans(),
)
def test_chunk_stream_raises_only_typed_errors(
    values: list[Any], framing: list[bytes], tail: bytes, cuts: list[int], require_done: bool
) -> None:
    body = _body(values, framing) + tail
    request = httpx2.Request("POST", "http://fuzz/v1/chat/completions")
    core = ChunkStream(httpx2.Response(200, request=request), max_event_size=256)
    received = 0
    failure: APIError | None = None
    try:
        for piece in split(body, cuts):
            received += len(list(core.feed(piece)))
            if core.done:
                break
        core.end(require_done=require_done)
    except APIError as exc:
        failure = exc
    if failure is None:
        return
    # The piece that failed may have completed chunks before the bad one: a bare
    # ChunkStream raises at once, with them counted and in .partial (the stream shells
    # hand them over first: test_differential.py::test_chunks_read_with_a_bad_event...).
    assert failure.events_received == core.events_received >= received
    assert failure.partial is not None
    core.accumulator.snapshot()
