"""Server-Sent Events: a sans-I/O decoder for the WHATWG event stream format.

Feed it bytes as they arrive; it returns the events each chunk completed::

    decoder = SSEDecoder()
    for chunk in response.iter_raw():
        for event in decoder.feed(chunk):
            ...
    decoder.close()  # end of stream: an unterminated last block is discarded

Rules this module keeps (WHATWG HTML, "event stream interpretation"):

- Lines end in LF, CR or CRLF. A CR that ends one chunk and an LF that starts the next
  are one line end, so CRs are normalised to LF as they arrive and the decoder
  remembers whether the last byte it saw was a CR.
- Lines are split on bytes. LF never occurs inside a multi-byte UTF-8 sequence, so a
  character split across chunks is whole again by the time its line is complete, and
  text is decoded once per event (with replacement characters) rather than per line.
- One UTF-8 byte-order mark at the very start of the stream is dropped.
- ``max_event_size`` bounds everything buffered for one event: the unfinished line
  plus the data lines collected so far. Past it, :class:`EventTooLargeError`, which
  carries the events completed before it so that nothing already received is lost.
- ``last_event_id`` changes only when a block ends (the spec's "last event ID
  string"); an ``id`` line in a block that never ends does not take effect.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventTooLargeError", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024

_BOM: Final = b"\xef\xbb\xbf"
_LF: Final = 10
_COLON: Final = 58
_MAX_RETRY_DIGITS: Final = 4000


class EventTooLargeError(ValueError):
    """One event (or one line) grew past the decoder's ``max_event_size``."""

    def __init__(self, limit: int, buffered: int) -> None:
        super().__init__(
            f"server-sent event exceeds max_event_size={limit} bytes "
            f"({buffered} bytes buffered without completing it)"
        )
        self.limit = limit
        self.buffered = buffered
        self.events: list[ServerSentEvent] = []  # completed before the limit was hit


def _to_bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


class ServerSentEvent:
    """One dispatched event.

    ``id`` is the last event ID in force when the event was dispatched ("" if none),
    ``retry`` the reconnection time in force in milliseconds (None if never set).
    The data is kept as the UTF-8 bytes received; :attr:`data` decodes it on demand.
    """

    __slots__ = ("event", "id", "raw_data", "retry")

    def __init__(
        self,
        data: str | bytes = b"",
        event: str = "message",
        id: str = "",
        retry: int | None = None,
    ) -> None:
        self.raw_data = data if data.__class__ is bytes else _to_bytes(data)
        self.event = event
        self.id = id
        self.retry = retry

    @property
    def data(self) -> str:
        return self.raw_data.decode("utf-8", "replace")

    def json(self) -> Any:
        """The data parsed as JSON."""
        return msgspec.json.decode(self.raw_data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.event, self.raw_data, self.id, self.retry) == (
            other.event,
            other.raw_data,
            other.id,
            other.retry,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"ServerSentEvent(event={self.event!r}, data={self.data!r}, "
            f"id={self.id!r}, retry={self.retry!r})"
        )


class SSEDecoder:
    """Turns a byte stream into :class:`ServerSentEvent` objects. Pure: no I/O."""

    __slots__ = (
        "_at_start",
        "_data",
        "_event_type",
        "_has_data",
        "_id_buffer",
        "_joined",
        "_pending",
        "_skip_lf",
        "last_event_id",
        "max_event_size",
        "retry",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        self.last_event_id = ""  # set when a block ends, as the spec's "last event ID string"
        self.retry: int | None = None
        self._id_buffer = ""  # the spec's "last event ID buffer": set by each id line
        # The unfinished last line: a bytearray while it holds any (b"" costs nothing
        # on the many streams whose reads end at a line's end).
        self._pending: bytes | bytearray = b""
        # The current block's data: the first line as received; from a second line on,
        # all lines joined in one bytearray (a list of millions of tiny lines would cost
        # far more memory than the bytes it holds).
        self._has_data = False
        self._data = b""
        self._joined: bytearray | None = None
        self._event_type = ""
        self._skip_lf = False  # the previous chunk ended in CR
        self._at_start = True  # the BOM check has not been done yet

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode one chunk; return the events it completed.

        If the chunk makes an event too large, :class:`EventTooLargeError` is raised
        and carries, as ``events``, the events this chunk completed before that.
        """
        payloads = self.feed_plain(data)
        if payloads is not None:
            id_, retry = self.last_event_id, self.retry
            return [ServerSentEvent(payload, "message", id_, retry) for payload in payloads]
        return self.feed_lines(data)

    def feed_lines(self, data: bytes) -> list[ServerSentEvent]:
        """:meth:`feed` without its first try, :meth:`feed_plain`: for a caller that
        has just made it."""
        if self._at_start:
            data = self._take_pending() + data
            if len(data) < len(_BOM) and _BOM.startswith(data):
                self._pending += data  # too short to tell yet
                return []
            self._at_start = False
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if not data:
            return []
        if self._skip_lf and data[0] == _LF:
            data = data[1:]
        self._skip_lf = False
        if data.find(b"\r") >= 0:
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")

        end = data.rfind(b"\n")
        if end < 0:
            self._add_pending(data)
            return []
        if self._pending:
            head = self._take_pending()
            data = head + data
            end += len(head)
        events: list[ServerSentEvent] = []
        try:
            self._process_lines(data[:end].split(b"\n"), events)
            if end + 1 < len(data):
                self._add_pending(data[end + 1 :])
        except EventTooLargeError as exc:
            exc.events = events
            raise
        return events

    def feed_plain(self, data: bytes) -> list[bytes] | None:
        """The data of every event ``data`` completes, when each of them is plain (one
        ``data: `` line, no other field, no comment); None otherwise, with nothing
        taken: then :meth:`feed` it. What an LLM stream sends, decoded with no object
        per event. A line cut at the end of ``data`` waits for the next call."""
        pending = self._pending
        if pending:
            if self._at_start:
                return None
            data = bytes(pending) + data  # a line cut by the last read (a copy per read)
        if (
            self._has_data
            or self._event_type
            or self._skip_lf
            or data[:6] != b"data: "  # so no byte order mark either
            or data.find(b"\r") >= 0  # not `in`: see _h1.ResponseHead.__init__
        ):
            return None
        end = len(data)
        if data[-2:] != b"\n\n":
            end = data.rfind(b"\n\n") + 2
            if end < 2:
                return None
        payloads = data[6 : end - 2].split(b"\n\ndata: ")
        # Two line breaks per event and no more: each is one line, ended by a blank one.
        if data.count(b"\n", 0, end) != 2 * len(payloads):
            return None
        limit = self.max_event_size
        rest = len(data) - end
        if (end > limit and max(map(len, payloads)) > limit) or rest > limit:
            return None  # feed_lines() says which
        if rest and data.find(b"\n", end) >= 0:
            return None  # a whole line after the events (a retry: takes effect at once)
        self._pending = bytearray(data[end:]) if rest else b""
        self._at_start = False
        self.last_event_id = self._id_buffer
        return payloads

    def unfinished(self) -> bytes | None:
        """The data of the event the stream stopped in the middle of (no blank line
        closed its block), or None. :meth:`close` discards that event, as the spec
        says; a caller may still want to know that it was a cut-off ``[DONE]``."""
        data: bytes | None = None
        if self._has_data:
            data = self._data if self._joined is None else bytes(self._joined)
        line = bytes(self._pending).rstrip(b"\r")
        if line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            data = value if data is None else data + b"\n" + value
        return data

    def close(self) -> list[ServerSentEvent]:
        """End of stream: an unfinished line and an unfinished block are discarded, as
        the spec says (so an ``id`` in a block that never ended does not take effect).
        Always returns an empty list; it exists so callers can treat every step alike.
        """
        self._at_start = False
        self._pending = b""
        self._reset_block()
        self._id_buffer = self.last_event_id
        self._skip_lf = False
        return []

    # -- internals -----------------------------------------------------------------

    def _process_lines(self, lines: list[bytes], events: list[ServerSentEvent]) -> None:
        for line in lines:
            if not line:
                self.last_event_id = self._id_buffer
                if self._has_data:
                    events.append(self._dispatch())
                else:
                    self._event_type = ""
            elif line.startswith(b"data: ") and not self._has_data:
                # The hot path, inlined: the one data line of an LLM event.
                if len(line) - 6 + len(self._pending) > self.max_event_size:
                    self._too_large(len(line) - 6 + len(self._pending))
                self._has_data = True
                self._data = line[6:]
            elif line.startswith(b"data:"):
                self._add_data(line[6:] if line[5:6] == b" " else line[5:])
            elif line[0] != _COLON:
                self._process_field(line)

    def _process_field(self, line: bytes) -> None:
        colon = line.find(b":")
        if colon < 0:
            name, value = line, b""
        else:
            name = line[:colon]
            value = line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"event":
            self._event_type = value.decode("utf-8", "replace")
        elif name == b"data":
            self._add_data(value)
        elif name == b"id":
            if value.find(b"\x00") < 0:
                self._id_buffer = value.decode("utf-8", "replace")
        # bytes.isdigit() accepts ASCII digits only. Absurdly long values (past int()'s
        # digit limit) are ignored rather than fatal.
        elif name == b"retry" and value.isdigit() and len(value) <= _MAX_RETRY_DIGITS:
            self.retry = int(value)

    def _add_data(self, value: bytes) -> None:
        if not self._has_data:
            self._has_data = True
            self._data = value
            size = len(value)
        else:
            if self._joined is None:
                self._joined = bytearray(self._data)
            self._joined += b"\n"
            self._joined += value
            size = len(self._joined)
        if size + len(self._pending) > self.max_event_size:
            self._too_large(size + len(self._pending))

    def _dispatch(self) -> ServerSentEvent:
        joined = self._joined
        event = ServerSentEvent(
            self._data if joined is None else bytes(joined),
            self._event_type or "message",
            self._id_buffer,
            self.retry,
        )
        self._has_data = False
        self._data = b""
        if joined is not None:
            self._joined = None
        self._event_type = ""
        return event

    def _reset_block(self) -> None:
        self._has_data = False
        self._data = b""
        self._joined = None
        self._event_type = ""

    def _add_pending(self, data: bytes) -> None:
        if self._pending:
            self._pending += data
        else:
            self._pending = bytearray(data)
        held = self._data if self._joined is None else self._joined
        buffered = len(self._pending) + len(held)
        if buffered > self.max_event_size:
            self._too_large(buffered)

    def _take_pending(self) -> bytes:
        data = bytes(self._pending)
        self._pending = b""
        return data

    def _too_large(self, buffered: int) -> None:
        self._pending = b""
        self._reset_block()
        raise EventTooLargeError(self.max_event_size, buffered)


# At the end: _eventsource imports the names above from this module.
