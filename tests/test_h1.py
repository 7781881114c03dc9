"""deltastream.transport._h1, the sans-I/O HTTP/1.1 framing: request heads, response heads and
response bodies (Content-Length, chunked, until close, none)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltastream.transport._h1 import (
    _FIELDS,
    _STATUS_LINES,
    _STATUS_LINES_LIMIT,
    MAX_HEAD,
    MAX_LINE,
    BodyDecoder,
    ResponseHead,
    ResponseStart,
    asks_to_close,
    encode_chunk,
    request_head,
)

CHUNKED = b"Transfer-Encoding: chunked\r\n"


def parse(raw: bytes) -> tuple[ResponseHead, bytes]:
    parsed = ResponseHead.parse(raw)
    assert parsed is not None, raw
    return parsed


def head_of(raw: bytes) -> ResponseHead:
    return parse(raw)[0]


def make_head(
    headers: bytes = b"", *, status: int = 200, version: bytes = b"HTTP/1.1"
) -> ResponseHead:
    """A head with ``headers`` (whole lines, each ending with CRLF)."""
    return head_of(b"%s %d Reason\r\n%s\r\n" % (version, status, headers))


def decoder(headers: bytes = b"", *, status: int = 200, method: bytes = b"GET") -> BodyDecoder:
    return BodyDecoder(make_head(headers, status=status), method)


def feed_all(body: BodyDecoder, pieces: Iterable[bytes]) -> bytes:
    return b"".join(body.feed(piece) for piece in pieces)


def as_fields(head: ResponseHead) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    return head.status, head.reason, head.http_version, head.headers


# --- request_head and encode_chunk ----------------------------------------------------


def test_request_head_is_the_request_line_then_headers_then_a_blank_line() -> None:
    head = request_head(b"POST", b"/v1/chat?x=1", [(b"Host", b"api"), (b"Accept", b"*/*")])
    assert head == b"POST /v1/chat?x=1 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n"


def test_request_head_without_headers() -> None:
    assert request_head(b"GET", b"/", []) == b"GET / HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"X-A", b"a\r\nInjected: 1"),
        (b"X-A", b"a\nb"),
        (b"X-A", b"a\rb"),
        (b"X-A\r\nInjected", b"1"),
        (b"X-A\n", b"1"),
    ],
)
def test_request_head_refuses_newlines_in_headers(name: bytes, value: bytes) -> None:
    with pytest.raises(httpx2.LocalProtocolError, match="newline"):
        request_head(b"GET", b"/", [(b"Host", b"h"), (name, value)])


def test_request_head_refuses_newlines_in_the_target() -> None:
    with pytest.raises(httpx2.LocalProtocolError, match="newline in request target"):
        request_head(b"GET", b"/a\r\nInjected: 1", [(b"Host", b"h")])


def test_request_head_is_the_request_line_and_headers() -> None:
    head = request_head(b"POST", b"/v1", [(b"Host", b"h"), (b"Content-Length", b"2")])
    assert head == b"POST /v1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"hello", b"5\r\nhello\r\n"),
        (b"x" * 255, b"ff\r\n" + b"x" * 255 + b"\r\n"),
        (b"\r\n", b"2\r\n\r\n\r\n"),
    ],
)
def test_encode_chunk(data: bytes, expected: bytes) -> None:
    assert encode_chunk(data) == expected


def test_encoded_chunks_decode_back() -> None:
    parts = [b"a", b"bc" * 100, b"\r\n0\r\n\r\n", b"z" * 5000]
    body = decoder(CHUNKED)
    out = feed_all(body, [*map(encode_chunk, parts), b"0\r\n\r\n"])
    assert out == b"".join(parts)
    assert body.complete


# --- ResponseHead.parse --------------------------------------------------------------

CRLF_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"X-Spaced:   padded value \t\r\n"
    b"Location: http://example.com:8080/a\r\n"
    b"X-Empty:\r\n"
    b"Set-Cookie: a=1\r\n"
    b"set-cookie: b=2\r\n"
    b"\r\n"
)
EXPECTED_FIELDS = (
    200,
    b"OK",
    b"HTTP/1.1",
    [
        (b"Content-Type", b"text/event-stream"),
        (b"X-Spaced", b"padded value"),
        (b"Location", b"http://example.com:8080/a"),
        (b"X-Empty", b""),
        (b"Set-Cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ],
)
LF_HEAD = CRLF_HEAD.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("raw", [CRLF_HEAD, LF_HEAD], ids=["crlf", "lf"])
def test_parse_head_and_keep_the_rest(raw: bytes) -> None:
    head, rest = parse(raw + b"data: 1\r\n\r\n")
    assert as_fields(head) == EXPECTED_FIELDS
    assert rest == b"data: 1\r\n\r\n"


def test_parse_mixed_line_ends() -> None:
    raw = b"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\nbody"
    head, rest = parse(raw)
    assert head.headers == [(b"A", b"1"), (b"B", b"2")]
    assert rest == b"body"


@pytest.mark.parametrize(
    ("raw", "rest"),
    [
        # The body's own leading line ends are not part of the head.
        (b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n\r\nx", b"\r\nx"),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n\nx", b"\nx"),
        (b"HTTP/1.1 200 OK\nA: 1\n\n\r\nx", b"\r\nx"),
        (b"HTTP/1.1 200 OK\nA: 1\n\n\nx", b"\nx"),
    ],
)
def test_parse_stops_at_the_first_blank_line(raw: bytes, rest: bytes) -> None:
    head, after = parse(raw)
    assert head.headers == [(b"A", b"1")]
    assert after == rest


@pytest.mark.parametrize(
    ("status_line", "status", "reason", "version"),
    [
        (b"HTTP/1.1 204", 204, b"", b"HTTP/1.1"),
        (b"HTTP/1.1 204 ", 204, b"", b"HTTP/1.1"),
        (b"HTTP/1.0 404 Not Found Here", 404, b"Not Found Here", b"HTTP/1.0"),
        (b"HTTP/1.1 599 x", 599, b"x", b"HTTP/1.1"),
        (b"HTTP/1.1 100 Continue", 100, b"Continue", b"HTTP/1.1"),
    ],
)
def test_parse_status_lines(status_line: bytes, status: int, reason: bytes, version: bytes) -> None:
    head, rest = parse(status_line + b"\r\n\r\n")
    assert (head.status, head.reason, head.http_version, head.headers) == (
        status,
        reason,
        version,
        [],
    )
    assert rest == b""


@pytest.mark.parametrize("raw", [CRLF_HEAD, LF_HEAD], ids=["crlf", "lf"])
def test_parse_at_every_split_point(raw: bytes) -> None:
    full = raw + b"tail"
    for end in range(len(full) + 1):
        parsed = ResponseHead.parse(full[:end])
        if end < len(raw):
            assert parsed is None, end
        else:
            assert parsed is not None, end
            assert as_fields(parsed[0]) == EXPECTED_FIELDS
            assert parsed[1] == full[len(raw) : end]


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/2 200 OK",
        b"HTTP/2.0 200 OK",
        b"HTTPS/1.1 200 OK",
        b"http/1.1 200 OK",
        b"ICY 200 OK",
        b"200 OK",
        b"HTTP/1.1",
        b"HTTP/1.1 ",
        b"HTTP/1.1 20 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 abc OK",
        b"HTTP/1.1 -20 OK",
        b"HTTP/1.1 2a0 OK",
        b"HTTP/1.1  200 OK",
        b" HTTP/1.1 200 OK",
        b"",
        b"\xff\xfe 200 OK",
    ],
)
def test_parse_rejects_invalid_status_lines(status_line: bytes) -> None:
    with pytest.raises(httpx2.RemoteProtocolError, match="status line"):
        ResponseHead.parse(status_line + b"\r\nA: 1\r\n\r\n")


@pytest.mark.parametrize(
    "line",
    [
        b"NoColonHere",
        b": no name",
        b"Name : space before the colon",
        b"Name\t: tab before the colon",
    ],
)
def test_parse_rejects_invalid_header_lines(line: bytes) -> None:
    with pytest.raises(httpx2.RemoteProtocolError, match="header line"):
        ResponseHead.parse(b"HTTP/1.1 200 OK\r\nA: 1\r\n" + line + b"\r\n\r\n")


@pytest.mark.parametrize(
    ("lines", "value"),
    [
        (b"X-Long: first\r\n continued\r\n", b"first continued"),
        (b"X-Long: first\r\n\tcontinued\r\n", b"first continued"),
        (b"X-Long: first  \r\n  \t second \r\n third\r\n", b"first second third"),
        (b"X-Long:\r\n only-after-the-fold\r\n", b"only-after-the-fold"),
        (b"X-Long: first\n continued\n", b"first continued"),
    ],
)
def test_obs_fold_is_unfolded_to_one_space(lines: bytes, value: bytes) -> None:
    head = head_of(b"HTTP/1.1 200 OK\r\n" + lines + b"After: 1\r\n\r\n")
    assert head.headers == [(b"X-Long", value), (b"After", b"1")]


def test_a_folded_framing_header_still_frames() -> None:
    head = head_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n")
    decoder = BodyDecoder(head, b"GET")
    assert decoder.feed(b"2\r\nok\r\n0\r\n\r\n") == b"ok"
    assert decoder.complete


@pytest.mark.parametrize("fold", [b" Leading: space", b"\tLeading: tab"])
def test_a_fold_before_the_first_field_is_refused(fold: bytes) -> None:
    with pytest.raises(httpx2.RemoteProtocolError, match="header line"):
        ResponseHead.parse(b"HTTP/1.1 200 OK\r\n" + fold + b"\r\nA: 1\r\n\r\n")


def test_a_repeated_header_line_is_one_shared_field() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Id: %d\r\n\r\n"
    first, second = head_of(raw % 1), head_of(raw % 2)
    assert first.fields[0] == (b"Content-Type", b"content-type", b"text/event-stream")
    assert second.fields[0] is first.fields[0]
    # A line that differs is its own field, its name still the shared one.
    assert (first.fields[1][2], second.fields[1][2]) == (b"1", b"2")
    assert second.fields[1][0] is first.fields[1][0]
    assert second.fields[1][1] is first.fields[1][1]


def test_a_fold_leaves_the_shared_field_of_its_first_line_alone() -> None:
    folded = head_of(b"HTTP/1.1 200 OK\r\nX-Fold: first\r\n more\r\n\r\n")
    plain = head_of(b"HTTP/1.1 200 OK\r\nX-Fold: first\r\n\r\n")
    assert (folded.headers, plain.headers) == (
        [(b"X-Fold", b"first more")],
        [(b"X-Fold", b"first")],
    )


def test_the_shared_header_lines_stay_bounded() -> None:
    for n in range(3 * _FIELDS.limit):
        head = head_of(b"HTTP/1.1 200 OK\r\nX-Request-Id: req-%d\r\nX-Name-%d: 1\r\n\r\n" % (n, n))
        assert head.headers == [(b"X-Request-Id", b"req-%d" % n), (b"X-Name-%d" % n, b"1")]
    assert len(_FIELDS.known) <= _FIELDS.limit


_LINES = [
    b"Content-Type: text/event-stream",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked",
    b"Content-Length: 5",
    b"Connection: keep-alive",
    b"Connection: close",
    b"X-Id: 1",
    b"X-Id: 1\r",  # a stray CR before the line end
    b"X-Spaced:   padded  ",
    b" folded on",  # continues the line above
    b"\tfolded too",
    b"A: 1\nB: 2",  # a bare LF ends a line too
    b"",
]


def _described(parsed: tuple[ResponseHead, bytes] | None) -> object:
    if parsed is None:
        return None
    head, rest = parsed
    names = (b"transfer-encoding", b"content-length", b"connection")
    framing = [head.values(name) for name in names]
    return as_fields(head), head.fields, framing, head.keeps_alive(), rest


def _parsed_or_error(raw: bytes) -> object:
    try:
        return _described(ResponseHead.parse(raw))
    except httpx2.RemoteProtocolError as exc:
        return str(exc)


@given(st.lists(st.sampled_from(_LINES), max_size=8), st.booleans())
def test_a_head_parses_the_same_with_its_lines_known_or_not(lines: list[bytes], crlf: bool) -> None:
    # The second parse looks each line up whole (the lines are known by then); the
    # first goes line by line. Both must give the same head, or the same error.
    end = b"\r\n" if crlf else b"\n"
    raw = b"HTTP/1.1 200 OK" + end + b"".join(line + end for line in lines) + end + b"rest"
    _FIELDS.known.clear()
    _STATUS_LINES.clear()
    cold = _parsed_or_error(raw)
    assert _parsed_or_error(raw) == cold
    assert _parsed_or_error(raw) == cold


def test_a_repeated_status_line_shares_its_parts() -> None:
    first = head_of(b"HTTP/1.1 418 I'm a teapot\r\nA: 1\r\n\r\n")
    second = head_of(b"HTTP/1.1 418 I'm a teapot\r\nA: 2\r\n\r\n")
    assert (second.status, second.reason, second.http_version) == (
        418,
        b"I'm a teapot",
        b"HTTP/1.1",
    )
    assert second.reason is first.reason
    assert second.http_version is first.http_version


def test_the_shared_status_lines_stay_bounded() -> None:
    for n in range(3 * _STATUS_LINES_LIMIT):
        head = head_of(b"HTTP/1.1 200 Fine %d\r\n\r\n" % n)
        assert (head.status, head.reason) == (200, b"Fine %d" % n)
    assert len(_STATUS_LINES) <= _STATUS_LINES_LIMIT


def test_an_incomplete_head_up_to_max_head_waits_for_more() -> None:
    start = b"HTTP/1.1 200 OK\r\nX-Pad: "
    assert ResponseHead.parse(start + b"a" * (MAX_HEAD - len(start))) is None


def test_an_incomplete_head_over_max_head_raises() -> None:
    start = b"HTTP/1.1 200 OK\r\nX-Pad: "
    with pytest.raises(httpx2.RemoteProtocolError, match="longer than"):
        ResponseHead.parse(start + b"a" * (MAX_HEAD + 1 - len(start)))


def test_a_head_of_many_short_lines_over_max_head_raises() -> None:
    lines = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEAD // 8))
    with pytest.raises(httpx2.RemoteProtocolError, match="longer than"):
        ResponseHead.parse(b"HTTP/1.1 200 OK\r\n" + lines)


def test_a_complete_head_over_max_head_raises() -> None:
    raw = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (2 * MAX_HEAD) + b"\r\n\r\n"
    with pytest.raises(httpx2.RemoteProtocolError):
        ResponseHead.parse(raw)


# --- keeps_alive and values --------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "headers", "expected"),
    [
        (b"HTTP/1.1", b"", True),
        (b"HTTP/1.1", b"Connection: keep-alive\r\n", True),
        (b"HTTP/1.1", b"Connection: close\r\n", False),
        (b"HTTP/1.1", b"Connection: Close\r\n", False),
        (b"HTTP/1.1", b"Connection: upgrade,  CLOSE \r\n", False),
        (b"HTTP/1.1", b"Connection: x-custom\r\nconnection: close\r\n", False),
        (b"HTTP/1.1", b"Connection: closed\r\n", True),
        (b"HTTP/1.1", b"X-Connection: close\r\n", True),
        (b"HTTP/1.0", b"", False),
        (b"HTTP/1.0", b"Connection: keep-alive\r\n", True),
        (b"HTTP/1.0", b"Connection: Keep-Alive\r\n", True),
        (b"HTTP/1.0", b"Connection: close\r\n", False),
        (b"HTTP/1.0", b"Keep-Alive: timeout=5\r\n", False),
    ],
)
def test_keeps_alive(version: bytes, headers: bytes, expected: bool) -> None:
    assert make_head(headers, version=version).keeps_alive() is expected


def test_values_are_split_lowercased_and_gathered_across_headers() -> None:
    head = make_head(b"Vary: Accept, Origin\r\nX: 1\r\nVARY:  Cookie \r\n")
    assert head.values(b"vary") == [b"accept", b"origin", b"cookie"]
    assert head.values(b"missing") == []


# --- BodyDecoder: Content-Length ----------------------------------------------------


def test_content_length_exact() -> None:
    body = decoder(b"Content-Length: 5\r\n")
    assert not body.complete
    assert not body.until_close
    assert body.feed(b"hello") == b"hello"
    assert body.complete
    assert body.leftover == b""
    body.eof()  # complete: the connection closing afterwards is fine


def test_content_length_in_pieces() -> None:
    body = decoder(b"Content-Length: 11\r\n")
    assert body.feed(b"") == b""
    assert body.feed(b"hel") == b"hel"
    assert not body.complete
    assert body.feed(b"lo wor") == b"lo wor"
    assert not body.complete
    assert body.feed(b"ld") == b"ld"
    assert body.complete


def test_content_length_extra_bytes_go_to_leftover() -> None:
    body = decoder(b"Content-Length: 5\r\n")
    assert body.feed(b"hel") == b"hel"
    assert body.feed(b"loHTTP/1.1") == b"lo"
    assert body.complete
    assert body.leftover == b"HTTP/1.1"
    assert body.feed(b" 200") == b""
    assert body.leftover == b"HTTP/1.1 200"


def test_content_length_short_then_eof_raises() -> None:
    body = decoder(b"Content-Length: 10\r\n")
    assert body.feed(b"hello") == b"hello"
    with pytest.raises(httpx2.RemoteProtocolError, match="5 bytes missing"):
        body.eof()


def test_content_length_zero_is_complete_at_once() -> None:
    body = decoder(b"Content-Length: 0\r\n")
    assert body.complete
    assert body.feed(b"next") == b""
    assert body.leftover == b"next"


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 5, 5\r\n",
        b"Content-Length: 5\r\nContent-Length: 5\r\n",
        b"content-length:5\r\n",
    ],
)
def test_content_length_repeated_with_one_value(headers: bytes) -> None:
    body = decoder(headers)
    assert body.feed(b"hello!") == b"hello"
    assert body.leftover == b"!"


@pytest.mark.parametrize("value", [b"abc", b"-1", b"+5", b"1.5", b"0x10", b"5 5", b"", b"\xd9\xa5"])
def test_content_length_invalid(value: bytes) -> None:
    with pytest.raises(httpx2.RemoteProtocolError, match="Content-Length"):
        decoder(b"Content-Length: " + value + b"\r\n")


@pytest.mark.parametrize(
    "headers", [b"Content-Length: 5, 6\r\n", b"Content-Length: 5\r\nContent-Length: 6\r\n"]
)
def test_content_length_conflicting(headers: bytes) -> None:
    with pytest.raises(httpx2.RemoteProtocolError, match="Conflicting"):
        decoder(headers)


# --- BodyDecoder: chunked -----------------------------------------------------------

CHUNKED_BODY = b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"


def test_chunked_fed_whole() -> None:
    body = decoder(CHUNKED)
    assert not body.until_close
    assert body.feed(CHUNKED_BODY) == b"hello world"
    assert body.complete
    assert body.leftover == b""
    body.eof()


@pytest.mark.parametrize(
    "raw",
    [
        CHUNKED_BODY,
        b'5;name=value;flag\r\nhello\r\n6 ; q="a;b"\r\n world\r\n0;last\r\n\r\n',
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\nY-Trailer: two\r\n\r\n",
        b"5\nhello\n6\n world\n0\n\n",
        b"5\nhello\r\n6\r\n world\n0\r\nX-Trailer: 1\n\r\n",
        b"B\r\nhello world\r\n0\r\n\r\n",
        b"0000b\r\nhello world\r\n0\r\n\r\n",
    ],
    ids=["plain", "extensions", "trailers", "lf-only", "mixed-line-ends", "uppercase", "zeros"],
)
def test_chunked_gives_the_same_body_however_it_is_split(raw: bytes) -> None:
    expected = b"hello world"
    whole = decoder(CHUNKED)
    assert whole.feed(raw) == expected
    assert whole.complete
    assert whole.leftover == b""
    for cut in range(len(raw) + 1):
        body = decoder(CHUNKED)
        assert feed_all(body, [raw[:cut], raw[cut:]]) == expected, cut
        assert body.complete, cut
        assert body.leftover == b"", cut
    for first in range(len(raw) + 1):
        for second in range(first, len(raw) + 1):
            body = decoder(CHUNKED)
            pieces = [raw[:first], raw[first:second], raw[second:]]
            assert feed_all(body, pieces) == expected, (first, second)
            assert body.complete
    one_by_one = decoder(CHUNKED)
    assert feed_all(one_by_one, [raw[i : i + 1] for i in range(len(raw))]) == expected
    assert one_by_one.complete
    assert one_by_one.leftover == b""


def test_chunked_is_not_complete_until_the_blank_line_after_the_last_chunk() -> None:
    body = decoder(CHUNKED)
    assert body.feed(b"5\r\nhello\r\n0\r\n") == b"hello"
    assert not body.complete
    assert body.feed(b"X-Trailer: 1\r\n") == b""
    assert not body.complete
    assert body.feed(b"\r\n") == b""
    assert body.complete


def test_chunked_hands_over_partial_chunk_data_at_once() -> None:
    body = decoder(CHUNKED)
    assert body.feed(b"b\r\nhello") == b"hello"
    assert body.feed(b" wor") == b" wor"
    assert body.feed(b"l") == b"l"
    assert body.feed(b"d\r") == b"d"
    assert body.feed(b"\n0\r\n\r\n") == b""
    assert body.complete


def test_chunked_size_of_sixteen_digits_is_accepted() -> None:
    body = decoder(CHUNKED)
    assert body.feed(b"000000000000000b\r\nhello world\r\n0\r\n\r\n") == b"hello world"
    assert body.complete


@pytest.mark.parametrize(
    "size_line",
    [
        b"zz",
        b"-1",
        b"",
        b" ",
        b";ext",
        b"1" * 17,
        b"0" * 16 + b"5",
        b"5 5",
        b"g",
        b"+5",
        b"\xd9\xa5",
    ],
)
def test_chunked_invalid_size_line_raises(size_line: bytes) -> None:
    body = decoder(CHUNKED)
    with pytest.raises(httpx2.RemoteProtocolError, match="chunk size"):
        body.feed(size_line + b"\r\nhello\r\n0\r\n\r\n")


def test_chunked_invalid_size_after_a_good_chunk_raises() -> None:
    body = decoder(CHUNKED)
    assert body.feed(b"5\r\nhello\r\n") == b"hello"
    with pytest.raises(httpx2.RemoteProtocolError, match="chunk size"):
        body.feed(b"zz\r\n")


@pytest.mark.parametrize("size_line", [b"0x5", b"0X5"])
def test_chunked_size_with_0x_prefix_raises(size_line: bytes) -> None:
    body = decoder(CHUNKED)
    with pytest.raises(httpx2.RemoteProtocolError, match="chunk size"):
        body.feed(size_line + b"\r\nhello\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    "pieces",
    [
        [b"5\r\nhelloX\r\n0\r\n\r\n"],
        [b"5\r\nhello5\r\nworld\r\n0\r\n\r\n"],
        [b"5\r\nhello\r", b"X"],
        [b"5\r\nhello", b"\rX"],
        [b"5\r\nhello", b"  \r\n"],
        [b"3\r\nhello\r\n0\r\n\r\n"],
    ],
)
def test_chunked_missing_crlf_after_data_raises(pieces: list[bytes]) -> None:
    body = decoder(CHUNKED)
    with pytest.raises(httpx2.RemoteProtocolError, match="Missing CRLF"):
        feed_all(body, pieces)


def test_chunked_size_line_up_to_max_line_waits_for_more() -> None:
    body = decoder(CHUNKED)
    assert body.feed(b"5;" + b"x" * (MAX_LINE - 2)) == b""
    assert not body.complete


@pytest.mark.parametrize("piece", [MAX_LINE + 1, 1000, 7])
def test_chunked_size_line_over_max_line_without_newline_raises(piece: int) -> None:
    line = b"5;" + b"x" * (MAX_LINE + 10)
    body = decoder(CHUNKED)
    fed: list[int] = []

    def feed_in_pieces() -> None:
        for start in range(0, len(line), piece):
            fed.append(start + piece)
            body.feed(line[start : start + piece])

    with pytest.raises(httpx2.RemoteProtocolError, match="too long"):
        feed_in_pieces()
    # It raised as soon as the buffered line went over the limit, not at the end.
    assert MAX_LINE < fed[-1] <= MAX_LINE + piece


def test_chunked_trailers_may_be_longer_than_max_line() -> None:
    body = decoder(CHUNKED)
    trailer = b"X-Long: " + b"t" * (MAX_LINE * 2)
    assert feed_all(body, [b"5\r\nhello\r\n0\r\n", trailer, b"\r\n\r\n"]) == b"hello"
    assert body.complete


def test_chunked_trailer_over_max_head_without_newline_raises() -> None:
    body = decoder(CHUNKED)
    assert body.feed(b"5\r\nhello\r\n0\r\n") == b"hello"
    with pytest.raises(httpx2.RemoteProtocolError, match="too long"):
        body.feed(b"X-Long: " + b"t" * MAX_HEAD)


@pytest.mark.parametrize(
    "fed",
    [
        b"",
        b"5\r\nhel",
        b"5\r\nhello",
        b"5\r\nhello\r",
        b"5\r\nhello\r\n",
        b"5\r\nhello\r\n0",
        b"5\r\nhello\r\n0\r\n",
        b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n",
    ],
)
def test_chunked_eof_before_the_end_raises(fed: bytes) -> None:
    body = decoder(CHUNKED)
    body.feed(fed)
    assert not body.complete
    with pytest.raises(httpx2.RemoteProtocolError, match="chunked body"):
        body.eof()


def test_chunked_bytes_after_the_last_chunk_go_to_leftover() -> None:
    body = decoder(CHUNKED)
    assert body.feed(CHUNKED_BODY + b"HTTP/1.1 200") == b"hello world"
    assert body.complete
    assert body.leftover == b"HTTP/1.1 200"
    assert body.feed(b" OK") == b""
    assert body.leftover == b"HTTP/1.1 200 OK"


def test_chunked_bytes_after_trailers_go_to_leftover() -> None:
    body = decoder(CHUNKED)
    raw = b"5\r\nhello\r\n0\r\nX: 1\r\n\r\nextra"
    assert feed_all(body, [raw[:18], raw[18:]]) == b"hello"
    assert body.leftover == b"extra"


@pytest.mark.parametrize(
    "headers",
    [
        b"Transfer-Encoding: Chunked\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n",
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        # Transfer-Encoding overrides Content-Length.
        b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    ],
)
def test_chunked_when_it_is_the_last_transfer_coding(headers: bytes) -> None:
    body = decoder(headers)
    assert body.feed(CHUNKED_BODY) == b"hello world"
    assert body.complete


# --- BodyDecoder: until close, no body ----------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        b"",
        b"Content-Type: text/plain\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Transfer-Encoding: chunked, gzip\r\n",
    ],
)
def test_until_close(headers: bytes) -> None:
    body = decoder(headers)
    assert body.until_close
    assert body.feed(b"5\r\nhello") == b"5\r\nhello"
    assert body.feed(b"\r\n0\r\n\r\n") == b"\r\n0\r\n\r\n"
    assert not body.complete
    body.eof()
    assert body.complete
    assert body.leftover == b""


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [
        (b"HEAD", 200, b"Content-Length: 100\r\n"),
        (b"HEAD", 200, CHUNKED),
        (b"HEAD", 200, b""),
        (b"GET", 204, b""),
        (b"GET", 204, b"Content-Length: 10\r\n"),
        (b"GET", 304, b"Content-Length: 10\r\n"),
        (b"GET", 304, CHUNKED),
        (b"GET", 100, b""),
        (b"GET", 101, b"Connection: upgrade\r\n"),
        (b"GET", 199, b"Content-Length: 10\r\n"),
    ],
)
def test_no_body(method: bytes, status: int, headers: bytes) -> None:
    body = decoder(headers, status=status, method=method)
    assert body.complete
    assert not body.until_close
    assert body.feed(b"HTTP/1.1 200 OK\r\n") == b""
    assert body.leftover == b"HTTP/1.1 200 OK\r\n"
    body.eof()


# --- ResponseStart ------------------------------------------------------------------

INTERIM_THEN_FINAL = (
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Final: 1\r\n\r\n"
    b"hello world"
)


def test_response_start_skips_interim_heads_in_one_read() -> None:
    start = ResponseStart(b"POST")
    assert not start.received
    started = start.feed(INTERIM_THEN_FINAL)
    assert started is not None
    head, body, first = started
    assert (head.status, head.headers) == (200, [(b"Content-Length", b"11"), (b"X-Final", b"1")])
    assert first == b"hello world"  # the bytes after the head, for the decoder
    assert not body.complete
    assert body.feed(first) == b"hello world"
    assert body.complete
    assert start.received


def test_response_start_at_every_split_point() -> None:
    final_at = INTERIM_THEN_FINAL.index(b"hello")
    for cut in range(len(INTERIM_THEN_FINAL) + 1):
        start = ResponseStart(b"GET")
        started = start.feed(INTERIM_THEN_FINAL[:cut])
        if cut < final_at:
            assert started is None, cut
            started = start.feed(INTERIM_THEN_FINAL[cut:])
        assert started is not None, cut
        head, body, first = started
        assert head.status == 200
        rest = INTERIM_THEN_FINAL[max(cut, final_at) :]
        assert body.feed(first) + body.feed(rest) == b"hello world"
        assert body.complete


def test_response_start_byte_by_byte() -> None:
    start = ResponseStart(b"GET")
    results = [start.feed(INTERIM_THEN_FINAL[i : i + 1]) for i in range(len(INTERIM_THEN_FINAL))]
    done = [i for i, result in enumerate(results) if result is not None]
    assert done[0] == INTERIM_THEN_FINAL.index(b"hello") - 1
    assert start.received


def test_response_start_101_is_final() -> None:
    start = ResponseStart(b"GET")
    started = start.feed(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw")
    assert started is not None
    head, body, first = started
    assert head.status == 101
    assert body.complete
    assert first == b"raw"
    assert body.feed(first) == b""
    assert body.leftover == b"raw"
    assert not start.reusable(head, False)


def test_response_start_uses_the_method_for_the_body() -> None:
    start = ResponseStart(b"HEAD")
    started = start.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert started is not None
    assert started[1].complete
    assert started[2] == b""


def test_response_start_received_means_any_byte() -> None:
    start = ResponseStart(b"GET")
    assert start.feed(b"H") is None
    assert start.received


def test_response_start_refuses_an_endless_head() -> None:
    start = ResponseStart(b"GET")
    assert start.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD // 2)) is None
    with pytest.raises(httpx2.RemoteProtocolError, match="longer than"):
        start.feed(b"a" * (MAX_HEAD // 2 + 10))


@pytest.mark.parametrize(
    ("response_headers", "request_headers", "expected"),
    [
        (b"", [], True),
        (b"", [(b"Host", b"h"), (b"Connection", b"keep-alive")], True),
        (b"", [(b"Connection", b"close")], False),
        (b"", [(b"connection", b"Close")], False),
        (b"Connection: close\r\n", [], False),
    ],
)
def test_response_start_reusable(
    response_headers: bytes, request_headers: list[tuple[bytes, bytes]], expected: bool
) -> None:
    head = make_head(b"Content-Length: 0\r\n" + response_headers)
    asks_close = asks_to_close(request_headers)
    assert ResponseStart(b"GET").reusable(head, asks_close) is expected


# --- properties --------------------------------------------------------------------


@st.composite
def chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    """(body, tail after the message, the message split into the pieces to feed)."""
    body = draw(st.binary(max_size=600))
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    upper = draw(st.booleans())
    extension = draw(st.sampled_from([b"", b";a=1", b'; name="v;x"']))
    sizes = draw(st.lists(st.integers(1, 200), min_size=1, max_size=20))
    encoded: list[bytes] = []
    pos, i = 0, 0
    while pos < len(body):
        size = sizes[i % len(sizes)]
        i += 1
        data = body[pos : pos + size]
        pos += size
        digits = b"%X" % len(data) if upper else b"%x" % len(data)
        encoded.append(digits + extension + eol + data + eol)
    trailers = draw(st.sampled_from([b"", b"X-Checksum: 1" + eol, b"A: 1" + eol + b"B: 2" + eol]))
    encoded.append(b"0" + extension + eol + trailers + eol)
    tail = draw(st.sampled_from([b"", b"HTTP/1.1 200 OK\r\n"]))
    message = b"".join(encoded) + tail
    cuts = sorted(draw(st.lists(st.integers(0, len(message)), max_size=30)))
    bounds = [0, *cuts, len(message)]
    pieces = [message[a:b] for a, b in pairwise(bounds)]
    return body, tail, pieces


@settings(max_examples=300, deadline=None)
@given(chunked_bodies())
def test_any_chunking_fed_in_any_pieces_decodes_to_the_body(
    case: tuple[bytes, bytes, list[bytes]],
) -> None:
    body, tail, pieces = case
    decoded = decoder(CHUNKED)
    assert feed_all(decoded, pieces) == body
    assert decoded.complete
    assert decoded.leftover == tail
    decoded.eof()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=20), st.data())
def test_content_length_fed_in_any_pieces(body: bytes, tail: bytes, data: st.DataObject) -> None:
    message = body + tail
    cuts = sorted(data.draw(st.lists(st.integers(0, len(message)), max_size=10)))
    bounds = [0, *cuts, len(message)]
    decoded = decoder(b"Content-Length: %d\r\n" % len(body))
    assert feed_all(decoded, [message[a:b] for a, b in pairwise(bounds)]) == body
    assert decoded.complete
    assert decoded.leftover == tail


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_framing_that_could_be_read_two_ways_is_not_reused(head: bytes) -> None:
    start = ResponseStart(b"GET")
    started = start.feed(head)
    assert started is not None
    assert not start.reusable(started[0], False)
    # The same head without the ambiguity would be reused.
    plain = ResponseStart(b"GET")
    ok = plain.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert ok is not None
    assert plain.reusable(ok[0], False)
