"""HTTP/1.1 client framing, sans I/O: request heads out, response heads and bodies in.

The transports (``_sync``, ``_async``) feed this module whatever a socket read returned and
get back the response head, then body bytes. A streaming LLM response arrives as
thousands of small HTTP chunks (one per token); h11 hands each one over as its own
event, which costs more than the rest of the client's work per token. Here one read's
worth of chunks becomes one ``bytes``: the framing is stripped with ``bytes.find`` and
slices, and nothing else happens per chunk.

Every buffer is bounded: a response head by ``MAX_HEAD``, a chunk-size line by
``MAX_LINE``, trailers by ``MAX_HEAD``. A violation raises
``httpx2.RemoteProtocolError`` saying what was wrong.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence

import httpx2

from .._memo import Memo

__all__ = [
    "MAX_HEAD",
    "MAX_LINE",
    "BodyDecoder",
    "ResponseHead",
    "ResponseStart",
    "asks_to_close",
    "declares_chunked",
    "encode_chunk",
    "request_head",
]

MAX_HEAD = 64 * 1024
MAX_LINE = 4 * 1024
_NO_BODY_STATUS = frozenset({204, 304})
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_FOLD = b" \t"
_FRAMING = frozenset({b"connection", b"content-length", b"transfer-encoding"})


def _error(message: str) -> httpx2.RemoteProtocolError:
    return httpx2.RemoteProtocolError(message)


def request_head(method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The request line and header block, ending with the blank line."""
    lines = [method + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"\r\n")
    block = b"\r\n".join(lines)
    # Each line break is one CR and one LF: any more came from a name, a value or the target.
    breaks = len(headers) + 2
    if block.count(b"\n") != breaks or block.count(b"\r") != breaks:
        for name, value in headers:
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
                raise httpx2.LocalProtocolError(f"Illegal newline in header {name!r}")
        raise httpx2.LocalProtocolError(f"Illegal newline in request target {target!r}")
    return block


def declares_chunked(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request's headers say its body is sent in chunks."""
    return any(
        len(name) == 17 and name.lower() == b"transfer-encoding" and value.lower() == b"chunked"
        for name, value in headers
    )


def asks_to_close(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request's headers ask the server to close the connection after it."""
    return any(
        len(name) == 10 and name.lower() == b"connection" and value.lower().find(b"close") >= 0
        for name, value in headers
    )


def encode_chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk, for request bodies of unknown length."""
    return b"%x\r\n%s\r\n" % (len(data), data)


# Status lines seen before -> (status, reason, version): a server sends a handful, and
# an open stream should not hold its own copy of b"HTTP/1.1" and b"OK".
_STATUS_LINES_LIMIT = 64
_STATUS_LINES: Memo[bytes, tuple[int, bytes, bytes]] = Memo(_STATUS_LINES_LIMIT)


def _status_line(line: bytes) -> tuple[int, bytes, bytes]:
    known = _STATUS_LINES.get(line)
    if known is not None:
        return known
    version, _, rest_of_line = line.partition(b" ")
    code, _, reason = rest_of_line.partition(b" ")
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise _error(f"Invalid status line {line[:100]!r}")
    return _STATUS_LINES.keep(line, (int(code), reason, version))


class ResponseHead:
    """A parsed status line and header block.

    ``fields`` holds each header as httpx2 stores it, (name, lower-case name, value),
    so a response's ``httpx2.Headers`` can take the list as it is. Header lines seen
    before share one tuple (see ``_Fields``): a server repeats most of its header lines
    on every response, and a stream held open should not keep its own copy of them.
    """

    __slots__ = ("all_ascii", "fields", "framing", "http_version", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: bytes,
        http_version: bytes,
        fields: list[tuple[bytes, bytes, bytes]],
        *,
        all_ascii: bool = False,
    ) -> None:
        self.status = status
        self.all_ascii = all_ascii  # known to be ASCII only (else unknown)
        self.reason = reason
        self.http_version = http_version
        self.fields = fields
        # The values of the headers that decide framing and reuse, as lower-case tokens
        # by header name: read by the body decoder and the reuse check, not changed.
        self.framing = _framing(fields)

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The header lines as (name, value), in order."""
        return [(name, value) for name, _, value in self.fields]

    @classmethod
    def parse(cls, buffer: bytes) -> tuple[ResponseHead, bytes] | None:
        """The head at the start of ``buffer`` and the bytes after it, or None when the
        head is not complete yet. Lines may end with CRLF or a bare LF."""
        end = buffer.find(b"\r\n\r\n")
        if 0 < end <= MAX_HEAD and buffer.find(b"\n\n", 0, end) < 0:
            # The usual head: CRLF line ends and most lines seen before, each looked up
            # whole without a step of Python per line. A line with a bare LF, a stray
            # CR or a fold is never a known one: the general loop below takes the head.
            head = buffer[:end]
            lines = head.split(b"\r\n")
            status = _STATUS_LINES.get(lines[0])
            if status is not None:
                fields = _known_fields(lines)
                if fields is not None:
                    return cls(*status, fields, all_ascii=head.isascii()), buffer[end + 4 :]
        end = _head_end(buffer)
        if end < 0 and len(buffer) <= MAX_HEAD:
            return None
        if end < 0 or end > MAX_HEAD:
            raise _error(f"Response head longer than {MAX_HEAD} bytes")
        head, rest = buffer[:end], buffer[end:]
        if rest.startswith(b"\r\n"):
            rest = rest[2:]
        elif rest.startswith(b"\n"):
            rest = rest[1:]
        lines = head.split(b"\n")
        status = _status_line(lines[0].rstrip(b"\r"))
        fields = []
        known = _FIELDS.known
        for raw in lines[1:]:
            line = raw.rstrip(b"\r")
            if (field := known.get(line)) is not None:
                fields.append(field)
            elif not line:
                continue
            elif line[0] in _FOLD:
                # obs-fold: the line continues the field above; RFC 9112 5.2 says
                # replace the fold with a space. Before the first field there is
                # nothing to continue.
                if not fields:
                    raise _error(f"Invalid header line {line[:100]!r}")
                name, key, value = fields[-1]
                fields[-1] = (name, key, b" ".join(filter(None, (value, line.strip(b" \t")))))
            else:
                fields.append(_FIELDS.parse(line))
        return cls(*status, fields, all_ascii=head.isascii()), rest

    def values(self, name: bytes) -> list[bytes]:
        """Every value of header ``name`` (lower case), comma-separated lists split and
        lowered: for the few headers that decide framing and reuse."""
        if name in _FRAMING:
            return list(self.framing.get(name, ()))
        found: list[bytes] = []
        for _, key, value in self.fields:
            if key == name:
                found.extend(part.strip().lower() for part in value.split(b","))
        return found

    def keeps_alive(self) -> bool:
        """Whether the server lets the connection carry another request."""
        tokens = self.framing.get(b"connection", ())
        if self.http_version == b"HTTP/1.0":
            return b"keep-alive" in tokens
        return b"close" not in tokens


class _Fields:
    """Header lines already parsed, each as one shared (name, lower-case name, value)
    tuple, and names already seen with their lower case. Bounded: a table that
    reaches ``limit`` entries starts over, so lines that never repeat (request ids,
    dates) cost a little churn and no growth."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.known: Memo[bytes, tuple[bytes, bytes, bytes]] = Memo(limit)
        self._names: Memo[bytes, tuple[bytes, bytes]] = Memo(limit)

    def parse(self, line: bytes) -> tuple[bytes, bytes, bytes]:
        """A header line not seen before (or not lately) as its field."""
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise _error(f"Invalid header line {line[:100]!r}")
        if (pair := self._names.get(name)) is None:
            pair = self._names.keep(name, (name, name.lower()))
        field = (pair[0], pair[1], value.strip(b" \t"))
        if len(line) <= _SHARED_LINE:
            self.known.keep(line, field)
        return field


_SHARED_LINE = 256  # longer header lines are kept per response, not shared
_FIELDS = _Fields(limit=512)


_Field = tuple[bytes, bytes, bytes]
_key_of = operator.itemgetter(1)


def _known_fields(lines: list[bytes]) -> list[_Field] | None:
    """The fields of header ``lines[1:]`` (CRLF-split, the status line first), or None
    if one needs the general loop. Lines seen before are looked up in one pass; a new
    plain ``name: value`` line is parsed as the general loop would."""
    found: list[_Field | None] = [*map(_FIELDS.known.get, lines)]
    found[0] = None  # the status line
    missing = found.count(None) - 1
    at = 0
    while missing:
        at = found.index(None, at + 1)
        line = lines[at]
        if not line or line[0] in _FOLD or line.endswith(b"\r") or line.find(b"\n") >= 0:
            return None
        found[at] = _FIELDS.parse(line)
        missing -= 1
    del found[0]
    return found  # type: ignore[return-value]  # no None left


def _framing(fields: list[_Field]) -> dict[bytes, list[bytes]]:
    """The values of the headers that decide framing and reuse, as lower-case tokens."""
    keys = [*map(_key_of, fields)]
    framing: dict[bytes, list[bytes]] = {}
    for key in _FRAMING.intersection(keys):
        if keys.count(key) == 1:
            framing[key] = _tokens(fields[keys.index(key)][2])
        else:
            framing[key] = [t for _, name, value in fields if name == key for t in _tokens(value)]
    return framing


def _tokens(value: bytes) -> list[bytes]:
    # find(), not `in`: CPython 3.11 tries `x in some_bytes` with x as an int first, and
    # raises and clears a TypeError when it is not one.
    if value.find(b",") >= 0:
        return [part.strip().lower() for part in value.split(b",")]
    return [value.strip().lower()]


def _head_end(buffer: bytes) -> int:
    """Index just past the last header line (before the blank line), or -1."""
    crlf = buffer.find(b"\n\r\n")
    lf = buffer.find(b"\n\n")
    if crlf < 0 and lf < 0:
        return -1
    if crlf < 0 or (0 <= lf < crlf):
        return lf + 1
    return crlf + 1


class BodyDecoder:
    """Strips a response body's framing: Content-Length, chunked, or until close.

    ``feed`` returns the body bytes the data completed (possibly empty); ``complete``
    says the body has ended; ``leftover`` holds bytes that came after it. ``eof`` is
    called when the connection closed and raises if the body was cut short.
    """

    __slots__ = ("_buffer", "_chunked", "_crlf", "_remaining", "_trailers", "complete", "leftover")

    def __init__(self, head: ResponseHead, method: bytes) -> None:
        self._buffer = b""
        self._crlf = False  # the CRLF after a chunk's data is due
        self._trailers = False
        self.leftover = b""
        self.complete = False
        self._chunked = False
        self._remaining: int | None = None  # None: until the connection closes
        framing = head.framing
        if method == b"HEAD" or head.status < 200 or head.status in _NO_BODY_STATUS:
            self._remaining = 0
        elif codings := framing.get(b"transfer-encoding"):
            self._chunked = codings[-1] == b"chunked"
            self._remaining = 0 if self._chunked else None
        else:
            lengths = set(framing.get(b"content-length", ()))
            if len(lengths) > 1:
                raise _error(f"Conflicting Content-Length values {sorted(lengths)!r}")
            if lengths:
                (length,) = lengths
                if not length.isdigit():
                    raise _error(f"Invalid Content-Length {length[:40]!r}")
                self._remaining = int(length)
        if not self._chunked and self._remaining == 0:
            self.complete = True

    @property
    def until_close(self) -> bool:
        """The body ends when the connection does (the connection cannot be reused)."""
        return not self._chunked and self._remaining is None

    def feed(self, data: bytes) -> bytes:
        if self.complete:
            self.leftover += data
            return b""
        if self._chunked:
            return self._feed_chunked(data)
        if self._remaining is None:
            return data
        if len(data) < self._remaining:
            self._remaining -= len(data)
            return data
        body, self.leftover = data[: self._remaining], data[self._remaining :]
        self._remaining = 0
        self.complete = True
        return body

    def eof(self) -> None:
        """The connection closed: fine only if the body was complete or ends at close."""
        if self.complete:
            return
        if self.until_close:
            self.complete = True
            return
        kind = "chunked body" if self._chunked else f"body ({self._remaining} bytes missing)"
        raise _error(f"Peer closed the connection before the end of the {kind}")

    def _feed_chunked(self, data: bytes) -> bytes:
        buffer = self._buffer + data if self._buffer else data
        parts: list[bytes] = []
        pos, size = 0, len(buffer)
        remaining = self._remaining or 0
        while pos < size:
            if not remaining and not self._crlf and not self._trailers:
                pos = _whole_chunks(buffer, pos, parts)
                if pos >= size:
                    break
                if buffer.startswith(_LAST_CHUNK, pos):  # the usual end: no trailers
                    self.complete = True
                    self.leftover = buffer[pos + len(_LAST_CHUNK) :]
                    pos = size
                    break
            if remaining:
                take = remaining if remaining <= size - pos else size - pos
                parts.append(buffer[pos : pos + take])
                pos += take
                remaining -= take
                self._crlf = not remaining
                continue
            if self._crlf:
                if buffer.startswith(b"\r\n", pos):
                    pos += 2
                elif buffer.startswith(b"\n", pos):
                    pos += 1
                elif size - pos < 2 and buffer.startswith(b"\r", pos):
                    break  # the LF is in the next read
                else:
                    raise _error("Missing CRLF after chunk data")
                self._crlf = False
                continue
            end = buffer.find(b"\n", pos)
            if end < 0:
                if size - pos > (MAX_HEAD if self._trailers else MAX_LINE):
                    raise _error("Chunk-size line or trailers too long")
                break
            line = buffer[pos:end]
            pos = end + 1
            if self._trailers:
                if line in (b"", b"\r"):
                    self.complete = True
                    self.leftover = buffer[pos:]
                    pos = size
                    break
                continue  # trailers are read and dropped
            digits = line.partition(b";")[0].strip()
            if not digits or len(digits) > 16 or digits.translate(None, _HEX_DIGITS):
                raise _error(f"Invalid chunk size line {line[:100]!r}")
            remaining = int(digits, 16)
            if not remaining:
                self._trailers = True
            # Fast path: the whole chunk and its CRLF are here.
            elif buffer.startswith(b"\r\n", pos + remaining):
                parts.append(buffer[pos : pos + remaining])
                pos += remaining + 2
                remaining = 0
        self._remaining = remaining
        self._buffer = buffer[pos:] if pos < size else b""
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)


_X = (b"x", b"X")
_LAST_CHUNK = b"0\r\n\r\n"
_SIZES: dict[bytes, int] = {}  # size lines seen, parsed: token events repeat their sizes
_SIZES_KEPT = 4096


def _whole_chunks(buffer: bytes, pos: int, parts: list[bytes]) -> int:
    """Take the plain chunks (``<hex size>CRLF<data>CRLF``, all of it in ``buffer``)
    from ``pos`` on, appending their data to ``parts``; return where they stop. This is
    the loop a token stream spends its framing time in, so it does the least per chunk:
    one ``find``, one ``int``, one slice. Anything else (an extension, a bare LF, a
    chunk cut by the read, the last chunk) is left to the general loop."""
    find, startswith, append = buffer.find, buffer.startswith, parts.append
    while True:
        end = find(b"\r\n", pos)
        if end <= pos or end - pos > 16:
            return pos
        line = buffer[pos:end]
        size = _SIZES.get(line)
        if size is None:
            # isalnum() leaves hex digits and other letters, which int() refuses; the
            # only other thing int(..., 16) takes is a 0x prefix, not allowed in HTTP.
            if not line.isalnum() or line[1:2] in _X:
                return pos
            try:
                size = int(line, 16)
            except ValueError:
                return pos  # the general loop reports it
            if len(_SIZES) < _SIZES_KEPT:
                _SIZES[line] = size
        stop = end + 2 + size
        if not size or not startswith(b"\r\n", stop):
            return pos
        append(buffer[end + 2 : stop])
        pos = stop + 2


class ResponseStart:
    """Collects the bytes of a response up to its head, skipping interim (1xx) heads.

    ``feed`` returns None until the final head is in, then the head, the body decoder
    and the bytes that came after the head, for that decoder to take. ``received``
    says whether any byte came at all (a reused connection that closes before one did
    was stale).
    """

    __slots__ = ("_buffer", "_method", "received")

    def __init__(self, method: bytes) -> None:
        self._method = method
        self._buffer = b""
        self.received = False

    def feed(self, data: bytes) -> tuple[ResponseHead, BodyDecoder, bytes] | None:
        self.received = True
        self._buffer += data
        while True:
            parsed = ResponseHead.parse(self._buffer)
            if parsed is None:
                return None
            head, self._buffer = parsed
            if not (100 <= head.status < 200 and head.status != 101):
                break
        rest, self._buffer = self._buffer, b""
        return head, BodyDecoder(head, self._method), rest

    def reusable(self, head: ResponseHead, asks_close: bool) -> bool:
        """Whether the connection may carry another request after this response
        (``asks_close``: the request said ``Connection: close``)."""
        framing = head.framing
        if b"transfer-encoding" in framing and (
            head.http_version == b"HTTP/1.0" or b"content-length" in framing
        ):
            return False  # framing a proxy could read two ways: do not reuse (RFC 9112 6.1)
        return head.keeps_alive() and head.status != 101 and not asks_close
