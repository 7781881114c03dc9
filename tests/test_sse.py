"""Conformance tests for the SSE decoder against WHATWG HTML "event stream interpretation".

Every decoder test that takes the ``chunking`` fixture runs three ways: the whole input in
one ``feed``, the input fed one byte at a time, and the input cut in two at every possible
position (including the empty first and last pieces). Property tests then check random
streams under random chunkings, arbitrary bytes against a literal model of the spec, and
the ``max_event_size`` bounds.
"""

from __future__ import annotations

import contextlib
import re
import string
import tracemalloc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from unittest import mock

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltastream.sse import (
    DEFAULT_MAX_EVENT_SIZE,
    EventTooLargeError,
    ServerSentEvent,
    SSEDecoder,
)

BOM = b"\xef\xbb\xbf"
KiB = 1024
MiB = 1024 * KiB

# -- helpers ----------------------------------------------------------------------------

Chunking = Literal["whole", "bytewise", "every-split"]
CHUNKINGS: list[Chunking] = ["whole", "bytewise", "every-split"]


def pieces(data: bytes, splits: Iterable[int]) -> list[bytes]:
    """``data`` cut at ``splits`` (positions; repeats and ends give empty pieces)."""
    cuts = sorted(splits)
    return [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def decode_all(
    data: bytes, splits: Iterable[int], decoder: SSEDecoder | None = None
) -> list[ServerSentEvent]:
    """Feed ``data`` cut at ``splits``, then close; return every event."""
    if decoder is None:
        decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces(data, splits):
        events += decoder.feed(piece)
    events += decoder.close()
    return events


@dataclass
class Overflow:
    """Where feeding stopped with :class:`EventTooLargeError` (``error`` None: it never did)."""

    error: EventTooLargeError | None
    fed_before: int  # bytes fed by the calls that returned normally
    fed_after: int  # ... plus the piece that raised
    events: list[ServerSentEvent]
    used: int  # chunks taken, the one that raised included


def feed_until_too_large(decoder: SSEDecoder, chunks: Iterable[bytes]) -> Overflow:
    fed = used = 0
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        used += 1
        try:
            events += decoder.feed(chunk)
        except EventTooLargeError as error:
            return Overflow(error, fed, fed + len(chunk), events, used)
        fed += len(chunk)
    return Overflow(None, fed, fed, events, used)


def split_plans(data: bytes, chunking: Chunking) -> list[list[int]]:
    """The cut positions to try for one chunking mode."""
    if chunking == "whole":
        return [[]]
    if chunking == "bytewise":
        return [list(range(1, len(data)))]
    return [[cut] for cut in range(len(data) + 1)]


@pytest.fixture(params=CHUNKINGS)
def chunking(request: pytest.FixtureRequest) -> Chunking:
    mode: Chunking = request.param
    return mode


def assert_decodes(
    data: bytes,
    chunking: Chunking,
    expected: Sequence[ServerSentEvent],
    *,
    last_event_id: str = "",
    retry: int | None = None,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
) -> None:
    """``data`` decodes to ``expected`` (and leaves this final state) under every split."""
    for splits in split_plans(data, chunking):
        decoder = SSEDecoder(max_event_size)
        events = decode_all(data, splits, decoder)
        got = (events, decoder.last_event_id, decoder.retry)
        assert got == (list(expected), last_event_id, retry), f"cut at {splits}"


ev = ServerSentEvent  # short name for the expected events below


EventSummary = tuple[str, str, str, int | None]


def summary(events: Iterable[ServerSentEvent]) -> list[EventSummary]:
    """Events as decoded text, to compare with the text-level reference model."""
    return [(e.event, e.data, e.id, e.retry) for e in events]


def reference_decode(stream: bytes) -> tuple[list[EventSummary], str, int | None]:
    """The spec, read literally: decode the whole stream, split lines, run the steps.

    Returns the dispatched events, the last event ID *string* (which only changes when a
    blank line is reached, so an unfinished block never moves it) and the reconnection
    time (which a complete ``retry`` line sets at once).
    """
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    *lines, _unterminated = re.split(r"\r\n|\r|\n", text)
    events: list[EventSummary] = []
    data_buffer = event_type = id_buffer = id_string = ""
    retry: int | None = None
    for line in lines:
        if not line:
            id_string = id_buffer
            if data_buffer:
                events.append((event_type or "message", data_buffer[:-1], id_string, retry))
            data_buffer = event_type = ""
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event_type = value
        elif name == "data":
            data_buffer += value + "\n"
        elif name == "id":
            if "\x00" not in value:
                id_buffer = value
        elif name == "retry" and value and all(c in string.digits for c in value):
            retry = int(value)
    return events, id_string, retry


# -- ServerSentEvent --------------------------------------------------------------------


def test_event_defaults() -> None:
    event = ServerSentEvent()
    assert (event.data, event.raw_data, event.event, event.id, event.retry) == (
        "",
        b"",
        "message",
        "",
        None,
    )


def test_str_data_is_stored_as_utf8() -> None:
    assert ServerSentEvent("é").raw_data == "é".encode()
    assert ServerSentEvent("é").raw_data == b"\xc3\xa9"
    assert ServerSentEvent("😀\n€").data == "😀\n€"


def test_bytes_data_is_kept_and_decoded_with_replacement() -> None:
    event = ServerSentEvent(b"ok \xff\xe2\x82")
    assert event.raw_data == b"ok \xff\xe2\x82"
    assert event.data == "ok \ufffd\ufffd"


def test_event_equality() -> None:
    base = ServerSentEvent("x", event="e", id="1", retry=5)
    assert base == ServerSentEvent(b"x", event="e", id="1", retry=5)
    assert base != ServerSentEvent("y", event="e", id="1", retry=5)
    assert base != ServerSentEvent("x", event="f", id="1", retry=5)
    assert base != ServerSentEvent("x", event="e", id="2", retry=5)
    assert base != ServerSentEvent("x", event="e", id="1", retry=None)
    assert ServerSentEvent("é") == ServerSentEvent("é".encode())
    # Raw bytes are compared, not the decoded text: two invalid byte strings that both
    # decode to one replacement character are still different events.
    assert ServerSentEvent(b"\xff") != ServerSentEvent(b"\xfe")


def test_event_equality_with_other_types_defers() -> None:
    event = ServerSentEvent("x")
    assert event != "x"
    assert event != ("message", "x", "", None)
    # NotImplemented lets the other operand decide: mock.ANY then says "equal".
    assert event == mock.ANY


def test_event_is_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(ServerSentEvent("x"))


def test_event_repr() -> None:
    assert repr(ServerSentEvent("hi")) == (
        "ServerSentEvent(event='message', data='hi', id='', retry=None)"
    )
    assert repr(ServerSentEvent("a\nb", event="update", id="7", retry=1500)) == (
        "ServerSentEvent(event='update', data='a\\nb', id='7', retry=1500)"
    )
    assert repr(ServerSentEvent(b"\xff")) == (
        "ServerSentEvent(event='message', data='\ufffd', id='', retry=None)"
    )


def test_event_json() -> None:
    event = ServerSentEvent('{"a": [1, 2.5, null, true, "é"], "b": {}}')
    assert event.json() == {"a": [1, 2.5, None, True, "é"], "b": {}}
    assert ServerSentEvent("42").json() == 42
    assert ServerSentEvent('"\\u00e9"').json() == "é"


def test_event_json_rejects_non_json() -> None:
    with pytest.raises(msgspec.DecodeError):
        ServerSentEvent("[DONE]").json()
    with pytest.raises(msgspec.DecodeError):
        ServerSentEvent("").json()
    assert issubclass(msgspec.DecodeError, ValueError)


def test_json_of_multiline_data(chunking: Chunking) -> None:
    data = b'data: {"role":\ndata:  "assistant",\ndata: "n": 3}\n\n'
    assert_decodes(data, chunking, [ev('{"role":\n "assistant",\n"n": 3}')])
    assert decode_all(data, [])[0].json() == {"role": "assistant", "n": 3}


# -- examples from the specification --------------------------------------------------


def test_spec_stock_ticker_yhoo_needs_the_blank_line(chunking: Chunking) -> None:
    # Three data lines make one message, but only once a blank line ends the block.
    ticker = b"data: YHOO\ndata: +2\ndata: 10\n"
    assert_decodes(ticker, chunking, [])
    assert_decodes(ticker + b"\n", chunking, [ev("YHOO\n+2\n10")])


def test_spec_stock_ticker_fields_split_on_newlines() -> None:
    (event,) = decode_all(b"data: YHOO\ndata: +2\ndata: 10\n\n", [])
    symbol, change, price = event.data.split("\n")
    assert (symbol, change, price) == ("YHOO", "+2", "10")
    assert event.event == "message"


def test_spec_comment_then_ids(chunking: Chunking) -> None:
    # A comment-only block fires nothing; "id: 1" after the data still labels that event;
    # a bare "id" clears the id; a second space after the colon is kept in the data.
    stream = (
        b": test stream\n"
        b"\n"
        b"data: first event\n"
        b"id: 1\n"
        b"\n"
        b"data:second event\n"
        b"id\n"
        b"\n"
        b"data:  third event\n"
        b"\n"
    )
    expected = [ev("first event", id="1"), ev("second event"), ev(" third event")]
    assert_decodes(stream, chunking, expected, last_event_id="")


def test_spec_comment_then_ids_last_block_needs_blank_line(chunking: Chunking) -> None:
    stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third"
    assert_decodes(stream, chunking, [ev("first event", id="1"), ev("second event")])


def test_spec_empty_data_blocks(chunking: Chunking) -> None:
    # "data" alone gives an empty event; two bare "data" lines give one newline; the last
    # block has no blank line after it and is dropped at the end of the stream.
    stream = b"data\n\ndata\ndata\n\ndata:"
    assert_decodes(stream, chunking, [ev(""), ev("\n")])


def test_spec_space_after_colon_is_optional(chunking: Chunking) -> None:
    stream = b"data:test\n\ndata: test\n\n"
    assert_decodes(stream, chunking, [ev("test"), ev("test")])
    first, second = decode_all(stream, [])
    assert first == second


def test_spec_intro_messages(chunking: Chunking) -> None:
    stream = (
        b"data: This is the first message.\n"
        b"\n"
        b"data: This is the second message, it\n"
        b"data: has two lines.\n"
        b"\n"
        b"data: This is the third message.\n"
        b"\n"
    )
    expected = [
        ev("This is the first message."),
        ev("This is the second message, it\nhas two lines."),
        ev("This is the third message."),
    ]
    assert_decodes(stream, chunking, expected)


def test_spec_event_types_add_and_remove(chunking: Chunking) -> None:
    stream = (
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n"
    )
    expected = [
        ev("73857293", event="add"),
        ev("2153", event="remove"),
        ev("113411", event="add"),
    ]
    assert_decodes(stream, chunking, expected)


def test_spec_keepalive_comments(chunking: Chunking) -> None:
    # Servers send comment lines now and then to keep proxies from closing the connection.
    stream = b":\n\n: keep-alive\n\ndata: tick\n: still here\ndata: tock\n\n:\n"
    assert_decodes(stream, chunking, [ev("tick\ntock")])


# -- line ends --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        b"data: a\ndata: b\n\ndata: c\n\n",
        b"data: a\rdata: b\r\rdata: c\r\r",
        b"data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n",
        b"data: a\ndata: b\r\r\ndata: c\r\n\n",
        b"data: a\r\ndata: b\n\rdata: c\r\r\n",
    ],
    ids=["lf", "cr", "crlf", "mixed-1", "mixed-2"],
)
def test_line_ends(stream: bytes, chunking: Chunking) -> None:
    assert_decodes(stream, chunking, [ev("a\nb"), ev("c")])


def test_cr_lf_is_one_line_end_and_lf_cr_is_two(chunking: Chunking) -> None:
    assert_decodes(b"data: a\r\ndata: b\n\n", chunking, [ev("a\nb")])
    assert_decodes(b"data: a\n\rdata: b\n\n", chunking, [ev("a"), ev("b")])
    assert_decodes(b"data: a\r\rdata: b\n\n", chunking, [ev("a"), ev("b")])


def test_cr_ending_a_chunk_pairs_with_lf_starting_the_next() -> None:
    assert decode_all(b"data: a\r\ndata: b\n\n", [8]) == [ev("a\nb")]
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []  # an empty chunk in between changes nothing
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r") == [ev("a\nb")]
    assert decoder.feed(b"\n\r\n") == []  # the LF pairs with the CR: only one more blank line
    assert decoder.feed(b"data: c\r\r") == [ev("c")]
    assert decoder.close() == []


def test_lone_cr_chunks_are_separate_line_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [ev("a")]
    assert decoder.feed(b"data: b") == []
    assert decoder.feed(b"\r") == []
    assert decoder.feed(b"\r") == [ev("b")]


def test_blank_line_at_stream_start_and_many_blank_lines(chunking: Chunking) -> None:
    assert_decodes(b"\n\r\n\r\n\n\rdata: x\n\n\n\n\r\r", chunking, [ev("x")])


# -- byte-order mark --------------------------------------------------------------------


def test_one_leading_bom_is_dropped(chunking: Chunking) -> None:
    assert_decodes(BOM + b"data: a\n\n", chunking, [ev("a")])
    assert_decodes(BOM + b"\ndata: a\n\n", chunking, [ev("a")])
    assert_decodes(BOM + b"event: e\ndata: a\n\n", chunking, [ev("a", event="e")])


def test_second_bom_is_not_dropped(chunking: Chunking) -> None:
    # After the first BOM the line reads "\ufeffdata: a": an unknown field, ignored.
    assert_decodes(BOM + BOM + b"data: a\n\ndata: b\n\n", chunking, [ev("b")])


def test_bom_without_a_stream_or_alone(chunking: Chunking) -> None:
    assert_decodes(BOM, chunking, [])
    assert_decodes(BOM + b"\n", chunking, [])
    assert_decodes(b"", chunking, [])


def test_bom_later_in_the_stream_is_data(chunking: Chunking) -> None:
    assert_decodes(b"data: " + BOM + b"x\n\n", chunking, [ev("\ufeffx")])
    assert_decodes(b"data: a\n\n" + BOM + b"data: b\n\n", chunking, [ev("a")])


def test_partial_bom_at_start_is_not_a_bom(chunking: Chunking) -> None:
    # EF BB followed by "d" is an invalid sequence glued to the field name: ignored line.
    assert_decodes(b"\xef\xbbdata: a\n\ndata: b\n\n", chunking, [ev("b")])
    assert_decodes(b"\xefdata: a\n\ndata: b\n\n", chunking, [ev("b")])
    assert_decodes(b"\xef\xbb\ndata: b\n\n", chunking, [ev("b")])


# -- UTF-8 ------------------------------------------------------------------------------


def test_multibyte_characters_survive_any_split(chunking: Chunking) -> None:
    text = "é € 😀 ж 中文 \U0010fffd"
    stream = f"event: ünï\nid: ïd-😀\ndata: {text}\n\n".encode()
    assert_decodes(stream, chunking, [ev(text, event="ünï", id="ïd-😀")], last_event_id="ïd-😀")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (b"\xff", "\ufffd"),
        (b"\xff\xfe", "\ufffd\ufffd"),
        (b"\xe2\x82", "\ufffd"),  # truncated 3-byte sequence right before the line end
        (b"\xe2\x82x", "\ufffdx"),
        (b"\xf0\x9f\x98", "\ufffd"),
        (b"\xc0\xaf", "\ufffd\ufffd"),  # overlong encoding
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # encoded surrogate
        (b"\x80abc", "\ufffdabc"),
    ],
)
def test_invalid_utf8_is_replaced(value: bytes, text: str, chunking: Chunking) -> None:
    stream = b"data: " + value + b"\n\n"
    assert_decodes(stream, chunking, [ev(value)])
    assert decode_all(stream, [])[0].data == text


def test_invalid_utf8_in_event_and_id(chunking: Chunking) -> None:
    stream = b"event: a\xffb\nid: \xe2\x82\ndata: x\n\n"
    assert_decodes(
        stream, chunking, [ev("x", event="a\ufffdb", id="\ufffd")], last_event_id="\ufffd"
    )


def test_nul_and_control_characters_in_data(chunking: Chunking) -> None:
    # NUL, tab, vertical tab, NEL, LINE SEPARATOR: data, not line ends.
    text = "a\x00b\tc\x0bd\x85e\u2028f\x0cg"
    assert_decodes(b"data: " + text.encode() + b"\n\n", chunking, [ev(text)])


# -- comments and fields ----------------------------------------------------------------


def test_comments_are_ignored_anywhere(chunking: Chunking) -> None:
    stream = b":\n: x\n:data: no\ndata: a\n:event: no\n:: also\ndata: b\n: \n\n"
    assert_decodes(stream, chunking, [ev("a\nb")])


def test_comment_only_blocks_dispatch_nothing(chunking: Chunking) -> None:
    assert_decodes(b": one\n\n:two\n\n:\n\n", chunking, [])


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"data:x", "x"),
        (b"data: x", "x"),
        (b"data:  x", " x"),
        (b"data:   x ", "  x "),
        (b"data: a:b: c", "a:b: c"),
        (b"data::", ":"),
        (b"data: ", ""),
        (b"data:", ""),
        (b"data", ""),
        (b"data:\tx", "\tx"),
    ],
)
def test_field_value_split(line: bytes, data: str, chunking: Chunking) -> None:
    assert_decodes(line + b"\n\n", chunking, [ev(data)])


@pytest.mark.parametrize(
    "line",
    [
        b"Data: x",
        b"DATA: x",
        b" data: x",
        b"data : x",
        b"datax: y",
        b"dat: x",
        b"\tdata: x",
        b"foo: data: x",
        b"data\x00: x",
    ],
)
def test_lines_that_only_look_like_data_are_ignored(line: bytes, chunking: Chunking) -> None:
    assert_decodes(line + b"\n\n" + b"data: ok\n\n", chunking, [ev("ok")])


def test_unknown_fields_are_ignored(chunking: Chunking) -> None:
    stream = b"foo: bar\ndata: a\nbaz\nx:\nID: 9\nEvent: e\nretry2: 5\ndata: b\n\n"
    assert_decodes(stream, chunking, [ev("a\nb")])


def test_data_lines_join_with_newlines(chunking: Chunking) -> None:
    assert_decodes(b"data: a\ndata:\ndata: c\ndata\n\n", chunking, [ev("a\n\nc\n")])


# -- event type -------------------------------------------------------------------------


def test_event_type_default_set_and_reset(chunking: Chunking) -> None:
    stream = b"data: 1\n\nevent: e\ndata: 2\n\ndata: 3\n\nevent:\ndata: 4\n\nevent\ndata: 5\n\n"
    expected = [ev("1"), ev("2", event="e"), ev("3"), ev("4"), ev("5")]
    assert_decodes(stream, chunking, expected)


def test_last_event_line_wins_and_keeps_spaces(chunking: Chunking) -> None:
    stream = b"event: a\nevent:  b c \ndata: x\n\n"
    assert_decodes(stream, chunking, [ev("x", event=" b c ")])


def test_event_type_is_reset_by_a_block_without_data(chunking: Chunking) -> None:
    assert_decodes(b"event: e\n\ndata: x\n\n", chunking, [ev("x")])
    assert_decodes(b"event: e\n: c\n\ndata: x\n\n", chunking, [ev("x")])


def test_event_named_message_or_with_odd_text(chunking: Chunking) -> None:
    stream = b"event: message\ndata: 1\n\nevent: a:b\ndata: 2\n\n"
    assert_decodes(stream, chunking, [ev("1"), ev("2", event="a:b")])


# -- id ---------------------------------------------------------------------------------


def test_id_persists_and_empty_id_resets(chunking: Chunking) -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 2\ndata: d\n\nid:\ndata: e\n\n"
    expected = [ev("a", id="1"), ev("b", id="1"), ev("c"), ev("d", id="2"), ev("e")]
    assert_decodes(stream, chunking, expected, last_event_id="")


def test_id_after_data_applies_to_that_event(chunking: Chunking) -> None:
    assert_decodes(b"data: a\nid: 5\n\n", chunking, [ev("a", id="5")], last_event_id="5")


def test_id_with_nul_is_ignored(chunking: Chunking) -> None:
    stream = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid: \x00\ndata: c\n\n"
    expected = [ev("a", id="1"), ev("b", id="1"), ev("c", id="1")]
    assert_decodes(stream, chunking, expected, last_event_id="1")


def test_id_keeps_extra_spaces_and_colons(chunking: Chunking) -> None:
    stream = b"id:  a:b \ndata: x\n\n"
    assert_decodes(stream, chunking, [ev("x", id=" a:b ")], last_event_id=" a:b ")


def test_id_in_block_without_data_takes_effect(chunking: Chunking) -> None:
    stream = b"id: 7\n\ndata: a\n\nid: 8\n: no data\n\n"
    assert_decodes(stream, chunking, [ev("a", id="7")], last_event_id="8")


# -- retry ------------------------------------------------------------------------------


def test_retry_sets_reconnection_time(chunking: Chunking) -> None:
    stream = b"retry: 1000\ndata: a\n\ndata: b\n\nretry:250\ndata: c\n\nretry: 007\n\n"
    expected = [ev("a", retry=1000), ev("b", retry=1000), ev("c", retry=250)]
    assert_decodes(stream, chunking, expected, retry=7)


def test_retry_zero(chunking: Chunking) -> None:
    assert_decodes(b"retry: 0\ndata: a\n\n", chunking, [ev("a", retry=0)], retry=0)


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b" 10",  # two spaces after the colon: the value starts with a space
        b"10 ",
        b"-1",
        b"+1",
        b"1.5",
        b"1e3",
        b"0x10",
        b"1_000",
        b"ten",
        "\u0661\u0662".encode(),  # Arabic-Indic digits are digits, but not ASCII ones
        "\u00b2".encode(),  # superscript two: str.isdigit() is true for it
        "\uff11".encode(),  # fullwidth one
        b"1\x00",
    ],
)
def test_retry_that_is_not_all_ascii_digits_is_ignored(value: bytes, chunking: Chunking) -> None:
    stream = b"retry: 300\n\nretry: " + value + b"\ndata: a\n\n"
    assert_decodes(stream, chunking, [ev("a", retry=300)], retry=300)


def test_retry_without_colon_is_ignored(chunking: Chunking) -> None:
    assert_decodes(b"retry: 5\n\nretry\ndata: a\n\n", chunking, [ev("a", retry=5)], retry=5)


def test_retry_in_block_without_data_takes_effect(chunking: Chunking) -> None:
    assert_decodes(b"retry: 5\n\ndata: a\n\nretry: 6\n\n", chunking, [ev("a", retry=5)], retry=6)


def test_retry_with_very_many_digits() -> None:
    # Python refuses to convert strings of more than 4300 digits with int(); such a
    # value (a reconnection delay far beyond the age of the universe) is ignored rather
    # than allowed to raise, and the value in force stays.
    digits = b"1" + b"0" * 4999
    decoder = SSEDecoder()
    stream = b"retry: 7\n\nretry: " + digits + b"\ndata: a\n\n"
    assert decoder.feed(stream) == [ev("a", retry=7)]
    assert decoder.retry == 7


# -- blocks and the end of the stream ----------------------------------------------------


def test_block_without_data_dispatches_nothing(chunking: Chunking) -> None:
    stream = b"event: e\nid: 1\nretry: 9\nfoo: bar\n\n"
    assert_decodes(stream, chunking, [], last_event_id="1", retry=9)


def test_unterminated_last_block_is_discarded(chunking: Chunking) -> None:
    assert_decodes(b"data: a\n\ndata: b", chunking, [ev("a")])
    assert_decodes(b"data: a\n\ndata: b\n", chunking, [ev("a")])
    assert_decodes(b"data: a\r\rdata: b\r", chunking, [ev("a")])
    assert_decodes(b"data: a\r\n\r\ndata: b\r\n", chunking, [ev("a")])


def test_close_returns_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: e\ndata: a\n") == []
    assert decoder.close() == []
    assert decoder.close() == []


@pytest.mark.parametrize(
    ("stream", "unfinished"),
    [
        (b"data: a\n\n", None),
        (b"data: a\n\ndata: [DONE]", b"[DONE]"),
        (b"data: a\n\ndata: [DONE]\n", b"[DONE]"),
        (b"data: a\r\n\r\ndata:[DONE]\r\n", b"[DONE]"),
        (b"data: a\n\ndata: b\ndata: c", b"b\nc"),
        (b"data: a\n\nevent: e\n", None),
        (b"data: a\n\nid: 2", None),
    ],
)
def test_unfinished_is_the_data_of_the_block_the_stream_stopped_in(
    stream: bytes, unfinished: bytes | None
) -> None:
    for size in (1, 3, len(stream)):
        decoder = SSEDecoder()
        for start in range(0, len(stream), size):
            decoder.feed(stream[start : start + size])
        assert decoder.unfinished() == unfinished
        decoder.close()
        assert decoder.unfinished() is None


def test_retry_line_of_unfinished_block_takes_effect(chunking: Chunking) -> None:
    # A complete retry line sets the reconnection time at once, dispatch or not.
    assert_decodes(b"data: a\n\nretry: 5000\ndata: b\n", chunking, [ev("a")], retry=5000)


def test_unterminated_last_line_is_not_a_field(chunking: Chunking) -> None:
    # A line only exists once its line end arrives; what is left at the end of the stream
    # is pending data, and the spec discards it. So neither line below takes effect.
    assert_decodes(b"data: a\n\nretry: 5000", chunking, [ev("a")], retry=None)
    assert_decodes(b"id: 1\ndata: a\n\nid: 2", chunking, [ev("a", id="1")], last_event_id="1")


def test_id_of_unfinished_block_does_not_become_the_last_event_id(chunking: Chunking) -> None:
    # The last event ID used to resume (Last-Event-ID) only moves when a blank line ends a
    # block. Here event "b" with id 2 is never dispatched, so resuming must ask for what
    # follows id 1, or "b" is lost.
    stream = b"id: 1\ndata: a\n\nid: 2\ndata: b\n"
    assert_decodes(stream, chunking, [ev("a", id="1")], last_event_id="1")


def test_many_events_in_one_chunk_and_event_per_chunk() -> None:
    stream = b"".join(b"id: %d\ndata: %d\n\n" % (i, i) for i in range(200))
    expected = [ev(str(i), id=str(i)) for i in range(200)]
    assert decode_all(stream, []) == expected
    cuts = [m.end() for m in re.finditer(b"\n\n", stream)]
    assert decode_all(stream, cuts) == expected


def test_events_are_returned_by_the_feed_that_completes_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n\ndata: c") == [ev("a"), ev("b")]
    assert decoder.last_event_id == ""
    assert decoder.feed(b"\nid: 3\n\n") == [ev("c", id="3")]
    assert decoder.last_event_id == "3"


# -- max_event_size ---------------------------------------------------------------------


def test_event_too_large_error_is_a_value_error() -> None:
    err = EventTooLargeError(10, 11)
    assert isinstance(err, ValueError)
    assert (err.limit, err.buffered) == (10, 11)
    assert "10" in str(err)


def test_events_within_the_limit_decode_under_any_chunking(chunking: Chunking) -> None:
    limit = 128
    body = "x" * (limit - 16)
    stream = b"".join(b"data: " + body.encode() + b"\n\n" for _ in range(12))
    assert_decodes(stream, chunking, [ev(body)] * 12, max_event_size=limit)


def test_whole_event_of_exactly_the_limit_is_accepted() -> None:
    decoder = SSEDecoder(max_event_size=KiB)
    assert decoder.feed(b"data: " + b"x" * KiB + b"\n\n") == [ev("x" * KiB)]


def test_long_line_without_line_end_raises_once_past_the_limit() -> None:
    decoder = SSEDecoder(max_event_size=KiB)
    head = b"data: " + b"x" * (KiB - 14)
    assert decoder.feed(head) == []  # KiB - 8 bytes buffered: fine
    result = feed_until_too_large(decoder, [b"x"] * 16)
    assert result.error is not None
    assert KiB - 8 < len(head) + result.fed_after <= KiB + 8
    assert result.error.limit == KiB
    assert result.error.buffered > KiB


def test_many_data_lines_raise_once_past_the_limit() -> None:
    decoder = SSEDecoder(max_event_size=KiB)
    result = feed_until_too_large(decoder, [b"data: x\n"] * KiB)
    assert result.error is not None
    assert result.events == []
    # k data lines of "x" buffer 2k - 1 bytes ("x" joined by newlines).
    lines = result.fed_after // len(b"data: x\n")
    assert KiB - 16 < 2 * lines - 1 <= KiB + 16


def test_many_data_lines_in_one_chunk_raise() -> None:
    decoder = SSEDecoder(max_event_size=KiB)
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"data: x\n" * KiB + b"\n")


def test_decoder_works_after_event_too_large() -> None:
    decoder = SSEDecoder(max_event_size=KiB)
    assert decoder.feed(b"id: 1\nretry: 10\ndata: a\n\n") == [ev("a", id="1", retry=10)]
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"data: " + b"y" * (2 * KiB))
    assert decoder.feed(b"\n\ndata: b\n\n") == [ev("b", id="1", retry=10)]
    assert feed_until_too_large(decoder, [b"data: y\n"] * KiB).error is not None
    assert decoder.feed(b"\n\ndata: c\n\n") == [ev("c", id="1", retry=10)]


def test_buffered_memory_stays_bounded_when_fed_junk_forever() -> None:
    decoder = SSEDecoder(max_event_size=KiB)
    errors = 0
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            chunk = bytes([97 + i % 26]) * 300  # a fresh object each time
            try:
                decoder.feed(chunk)
            except EventTooLargeError:
                errors += 1
        retained = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert errors >= 2000 * 300 // (2 * KiB)
    assert retained < 16 * KiB
    assert decoder.feed(b"\n\ndata: ok\n\n") == [ev("ok")]


def test_buffered_memory_stays_proportional_to_the_limit_for_tiny_chunks() -> None:
    # A server can trickle a line a couple of bytes at a time. Whatever the chunking,
    # memory held for the unfinished line must stay within a small multiple of the limit
    # (here 4x), not grow with per-chunk bookkeeping.
    limit = 64 * KiB
    decoder = SSEDecoder(max_event_size=limit)
    line = b"data: " + b"x" * limit
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for start in range(0, limit - 8, 2):
            decoder.feed(line[start : start + 2])  # distinct 2-byte objects
        retained = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert retained < 4 * limit
    assert decoder.feed(b"\n\n") == [ev("x" * (limit - 14))]


def test_64_mib_line_in_64_kib_chunks_raises_with_default_limit() -> None:
    decoder = SSEDecoder()
    chunk = b"x" * (64 * KiB)
    result = feed_until_too_large(decoder, [b"data: ", *[chunk] * 1024])
    assert result.error is not None
    assert result.error.limit == DEFAULT_MAX_EVENT_SIZE == 16 * MiB
    assert result.fed_before <= DEFAULT_MAX_EVENT_SIZE < result.fed_after


# -- property tests ---------------------------------------------------------------------

# Characters from every UTF-8 length, plus a few that trip naive parsers.
CHARS = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x80, max_codepoint=0x7FF),
    st.characters(min_codepoint=0x800, max_codepoint=0xFFFF, exclude_categories=["Cs"]),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
    st.sampled_from([":", " ", "\x00", "\t", "\ufeff", "\x85", "\u2028", "\ufffd", "😀"]),
)
LINE_TEXT = st.text(alphabet=CHARS, max_size=12)
KNOWN_FIELDS = {"data", "event", "id", "retry"}
UNKNOWN_FIELD = st.text(alphabet=string.ascii_letters + "_-", min_size=1, max_size=6).filter(
    lambda name: name not in KNOWN_FIELDS
)
VALID_RETRY = st.from_regex(r"\A[0-9]{1,7}\Z")
INVALID_RETRY = LINE_TEXT.filter(lambda v: not (v and all(c in string.digits for c in v)))


@dataclass
class RenderedStream:
    data: bytes
    events: list[ServerSentEvent]
    last_event_id: str
    retry: int | None


def render_field(draw: st.DrawFn, name: str, value: str) -> str:
    if not value and draw(st.booleans()):
        return name  # no colon: the whole line is the name, the value is empty
    space = " " if value.startswith(" ") else draw(st.sampled_from(["", " "]))
    return f"{name}:{space}{value}"


@st.composite
def sse_streams(draw: st.DrawFn) -> RenderedStream:
    """A random stream and what it must decode to."""
    lines: list[str] = []
    events: list[ServerSentEvent] = []
    last_id = ""
    retry: int | None = None
    for _ in range(draw(st.integers(0, 6))):
        has_data = draw(st.integers(0, 3)) > 0
        data_lines = draw(st.lists(LINE_TEXT, min_size=1, max_size=4)) if has_data else []
        block = [render_field(draw, "data", value) for value in data_lines]
        extra: list[str] = []
        event_type = draw(st.none() | LINE_TEXT)
        if event_type is not None:
            extra.append(render_field(draw, "event", event_type))
        id_value = draw(st.none() | LINE_TEXT)
        if id_value is not None:
            extra.append(render_field(draw, "id", id_value))
            if "\x00" not in id_value:
                last_id = id_value
        retry_value = draw(st.none() | VALID_RETRY | INVALID_RETRY)
        if retry_value is not None:
            extra.append(render_field(draw, "retry", retry_value))
            if retry_value and all(c in string.digits for c in retry_value):
                retry = int(retry_value)
        for name, value in draw(st.lists(st.tuples(UNKNOWN_FIELD, LINE_TEXT), max_size=2)):
            extra.append(render_field(draw, name, value))
        extra += [":" + text for text in draw(st.lists(LINE_TEXT, max_size=2))]
        for line in extra:  # interleave, keeping the data lines in order
            block.insert(draw(st.integers(0, len(block))), line)
        lines += block
        lines += [""] * draw(st.integers(1, 2))
        if has_data:
            events.append(
                ServerSentEvent("\n".join(data_lines), event_type or "message", last_id, retry)
            )
    text: list[str] = []
    previous_end = ""
    for line in lines:
        ends = ["\n", "\r", "\r\n"]
        if previous_end == "\r" and not line:
            ends = ["\r", "\r\n"]  # a lone LF here would merge with that CR
        previous_end = draw(st.sampled_from(ends))
        text.append(line + previous_end)
    data = "".join(text).encode()
    if draw(st.booleans()):
        data = BOM + data
    return RenderedStream(data, events, last_id, retry)


def chunk_splits(size: int) -> st.SearchStrategy[list[int]]:
    """Any way of cutting ``size`` bytes, including empty pieces and one byte at a time."""
    return st.one_of(
        st.lists(st.integers(0, size), max_size=24),
        st.just(list(range(1, size))),
        st.integers(1, 16).map(lambda step: list(range(step, size, step))),
    )


SSE_TOKENS = st.sampled_from(
    [
        b"data: z",
        b"event: e",
        b"id: 7",
        b"retry: 9",
        b"data",
        b"event",
        b"id",
        b"retry",
        b"foo",
        b":",
        b": ",
        b" ",
        b"\r",
        b"\n",
        b"\r\n",
        b"\n\n",
        BOM,
        b"\xef",
        b"\xef\xbb",
        b"\xc3\xa9",
        b"\xe2\x82",
        b"\xac",
        b"\xf0\x9f\x98\x80",
        b"\xff",
        b"\x00",
        b"0",
        b"42",
        b"x",
        b"\t",
    ]
)
NOISY_BYTES = st.one_of(
    st.binary(max_size=64),
    st.lists(st.one_of(SSE_TOKENS, st.binary(max_size=3)), max_size=48).map(b"".join),
)


@settings(max_examples=200, deadline=None)
@given(stream=sse_streams(), choice=st.data())
def test_rendered_streams_decode_exactly_under_any_chunking(
    stream: RenderedStream, choice: st.DataObject
) -> None:
    splits = choice.draw(chunk_splits(len(stream.data)), label="splits")
    decoder = SSEDecoder()
    assert decode_all(stream.data, splits, decoder) == stream.events
    assert decoder.last_event_id == stream.last_event_id
    assert decoder.retry == stream.retry


@settings(max_examples=200, deadline=None)
@given(raw=NOISY_BYTES, choice=st.data())
def test_arbitrary_bytes_decode_the_same_under_any_chunking(
    raw: bytes, choice: st.DataObject
) -> None:
    splits = choice.draw(chunk_splits(len(raw)), label="splits")
    whole = SSEDecoder()
    whole_events = decode_all(raw, [], whole)
    chunked = SSEDecoder()
    assert decode_all(raw, splits, chunked) == whole_events
    assert (chunked.last_event_id, chunked.retry) == (whole.last_event_id, whole.retry)


@settings(max_examples=200, deadline=None)
@given(raw=NOISY_BYTES, choice=st.data())
def test_arbitrary_bytes_decode_like_the_spec(raw: bytes, choice: st.DataObject) -> None:
    splits = choice.draw(chunk_splits(len(raw)), label="splits")
    decoder = SSEDecoder()
    events = decode_all(raw, splits, decoder)
    expected_events, expected_id, expected_retry = reference_decode(raw)
    assert summary(events) == expected_events
    assert (decoder.last_event_id, decoder.retry) == (expected_id, expected_retry)


@settings(max_examples=200, deadline=None)
@given(raw=NOISY_BYTES, choice=st.data())
def test_arbitrary_bytes_then_blank_lines_decode_like_the_spec(
    raw: bytes, choice: st.DataObject
) -> None:
    # With a blank line at the end nothing is left unfinished, so the final state is
    # unambiguous as well.
    raw += b"\n\n"
    splits = choice.draw(chunk_splits(len(raw)), label="splits")
    decoder = SSEDecoder()
    events = decode_all(raw, splits, decoder)
    expected_events, expected_id, expected_retry = reference_decode(raw)
    assert summary(events) == expected_events
    assert (decoder.last_event_id, decoder.retry) == (expected_id, expected_retry)


@settings(max_examples=200, deadline=None)
@given(raw=NOISY_BYTES, limit=st.integers(1, 48), choice=st.data())
def test_arbitrary_bytes_with_a_small_limit_raise_only_event_too_large(
    raw: bytes, limit: int, choice: st.DataObject
) -> None:
    splits = choice.draw(chunk_splits(len(raw)), label="splits")
    decoder = SSEDecoder(max_event_size=limit)
    chunks = pieces(raw, splits)
    while chunks:
        # Any other exception escapes and fails the test; after an error, carry on.
        result = feed_until_too_large(decoder, chunks)
        assert all(len(e.raw_data) <= limit for e in result.events)
        if result.error is not None:
            assert result.error.buffered > result.error.limit == limit
        chunks = chunks[result.used :]
    with contextlib.suppress(EventTooLargeError):
        assert decoder.close() == []


LIMITS = st.integers(64, 2 * KiB)
LINE_ENDS = st.sampled_from([b"\n", b"\r", b"\r\n"])


@settings(max_examples=100, deadline=None)
@given(
    limit=LIMITS,
    prefix=st.sampled_from([b"data: ", b"data:", b"event: ", b"id: ", b"retry: ", b"x"]),
    extra=st.integers(1, 3 * KiB),
    choice=st.data(),
)
def test_long_line_raises_once_buffered_passes_the_limit(
    limit: int, prefix: bytes, extra: int, choice: st.DataObject
) -> None:
    line = prefix + b"7" * (limit + extra)
    splits = choice.draw(chunk_splits(len(line)), label="splits")
    decoder = SSEDecoder(max_event_size=limit)
    result = feed_until_too_large(decoder, pieces(line, splits))
    assert result.error is not None
    # Raised neither late (the calls that returned had not gone far past the limit) nor
    # early (with the piece that raised, more than the limit had come), give or take the
    # field name.
    assert result.fed_before <= limit + 8
    assert result.fed_after > limit - 8
    assert result.events == []
    assert decoder.feed(b"\n\ndata: ok\n\n") == [ev("ok")]


@settings(max_examples=100, deadline=None)
@given(
    limit=LIMITS,
    sizes=st.lists(st.integers(0, 200), min_size=1),
    ends=st.lists(LINE_ENDS, min_size=1),
    choice=st.data(),
)
def test_many_data_lines_raise_once_buffered_passes_the_limit(
    limit: int, sizes: list[int], ends: list[bytes], choice: st.DataObject
) -> None:
    values: list[bytes] = []
    # Enough lines that the data buffered (values joined by newlines) passes the limit.
    while sum(map(len, values)) + len(values) - 1 <= limit:
        values.append(b"d" * sizes[len(values) % len(sizes)])
    stream = b"".join(b"data: " + value + ends[i % len(ends)] for i, value in enumerate(values))
    splits = choice.draw(chunk_splits(len(stream)), label="splits")
    decoder = SSEDecoder(max_event_size=limit)
    result = feed_until_too_large(decoder, pieces(stream, splits))
    assert result.error is not None  # all lines in and no blank line: it must have raised
    assert result.events == []
    # Not raised early: the decoder cannot have buffered more than it was given.
    assert result.fed_after > limit
    assert decoder.feed(b"\n\ndata: ok\n\n") == [ev("ok")]


# -- feed_plain: the fast path for plain data-only events --------------------------------


def test_plain_events_come_out_as_their_data_with_a_cut_line_held() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_plain(b'data: {"a":1}\n\ndata: [DONE]\n\ndata: {"b"') == [
        b'{"a":1}',
        b"[DONE]",
    ]
    assert decoder.feed_plain(b":2}\n\n") == [b'{"b":2}']
    # No event ends in it: feed() takes it, and the event under way, from there on.
    assert decoder.feed_plain(b"data: x\n") is None
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed_plain(b"\n") is None
    assert [event.raw_data for event in decoder.feed(b"\n")] == [b"x"]
    assert decoder.feed_plain(b"data: y\n\n") == [b"y"]  # between events again


@pytest.mark.parametrize(
    "data",
    [
        b"event: delta\ndata: x\n\n",  # another field
        b": keep-alive\n\ndata: x\n\n",  # a comment
        b"data: a\ndata: b\n\n",  # two data lines in one event
        b"data: x\r\n\r\n",  # CR line ends
        b"\xef\xbb\xbfdata: x\n\n",  # a byte order mark
        b"data:x\n\n",  # no space after the colon
        b"data: x\n\n\n\n",  # blank lines between events
    ],
)
def test_anything_but_plain_events_is_left_to_feed(data: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed_plain(data) is None
    assert [event.raw_data for event in decoder.feed(data)]  # feed takes it, untouched


def test_a_plain_event_over_the_size_limit_is_left_to_feed_to_refuse() -> None:
    decoder = SSEDecoder(max_event_size=8)
    data = b"data: " + b"x" * 9 + b"\n\n"
    assert decoder.feed_plain(data) is None
    with pytest.raises(EventTooLargeError):
        decoder.feed(data)
