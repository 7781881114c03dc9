"""What both transports share: the names of the request and response extensions they
read and set, a request's settings, the rule for sending a request again, and the state
of a response body between reads."""

from __future__ import annotations

import contextlib
import operator
import select
import socket
import ssl
from collections.abc import Callable
from typing import Any, Generic, NoReturn, Protocol, TypeVar

import httpx2

from ._h1 import BodyDecoder, ResponseHead, asks_to_close, declares_chunked, request_head
from ._pool import Origin

__all__ = [
    "BODY_EXTENSION",
    "READ_SIZE",
    "RESEND_STALE_EXTENSION",
    "WAITING_EXTENSION",
    "BodyState",
    "ClientClosedError",
    "NetworkStream",
    "PreparedHead",
    "StaleConnection",
    "default_limits",
    "filled_headers",
    "header",
    "make_response",
    "may_resend",
    "nothing_came",
    "outgoing",
    "origin_of",
    "readable_now",
    "request_origin",
    "request_headers",
    "shutdown_socket",
    "timeouts_of",
    "whole_body",
    "while_waiting",
]

READ_SIZE = 64 * 1024
# What came with a response's head, past its first event, that is taken in the same
# step as that event (see BodyState.take_first): a few events of a token stream.
WHOLE_UNDER = 2048
BODY_EXTENSION = "deltastream.body"  # the response's body stream, read by _http.iter_body
# Set (true) on a request by a caller whose retry policy would send it again anyway.
RESEND_STALE_EXTENSION = "deltastream.resend_stale"
# A callable set on a request: called once the request is sent, before its answer is
# waited for (see while_waiting).
WAITING_EXTENSION = "deltastream.while_waiting"
_ALWAYS_RESENT = frozenset({"GET", "HEAD"})
_FD_RESERVE = 256  # file descriptors left for everything else the process opens
_MAX_IDLE = 100


def default_limits() -> httpx2.Limits:
    """As many connections as the process may open, less ``_FD_RESERVE`` (at least
    100), with 100 kept idle. A stream holds its connection from start to end, so the
    cap is the number of streams at once: set below what the OS allows, it only turns
    streams into a queue (openai-python's 1,000 fails 10,000 concurrent streams).
    Read when the transport is made, so raise ``RLIMIT_NOFILE`` first to get more."""
    soft = 1024
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 20
    return httpx2.Limits(
        max_connections=max(100, soft - _FD_RESERVE), max_keepalive_connections=_MAX_IDLE
    )


if hasattr(select, "poll"):

    def readable_now(sock: Any) -> bool:
        """Bytes, or the end of the stream, wait on ``sock`` (anything with a
        ``fileno()``): ``poll``, which takes any descriptor (``select`` fails past
        1,024)."""
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))

else:  # Windows: its select() takes any socket

    def readable_now(sock: Any) -> bool:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        return bool(select.select([sock], [], [], 0)[0])


def origin_of(url: httpx2.URL) -> Origin:
    scheme = url.raw_scheme
    if scheme not in (b"http", b"https"):
        raise httpx2.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}'")
    port = url.port or (443 if scheme == b"https" else 80)
    return scheme, url.raw_host, port


def request_origin(request: httpx2.Request) -> Origin:
    """``origin_of(request.url)``, known already for a request with a prepared head."""
    prepared: PreparedHead | None = getattr(request, PREPARED_HEAD, None)
    return origin_of(request.url) if prepared is None else prepared.origin


def timeouts_of(request: httpx2.Request) -> dict[str, float | None]:
    timeouts = request.extensions.get("timeout")
    return timeouts if isinstance(timeouts, dict) else {}


def request_headers(request: httpx2.Request) -> list[tuple[bytes, bytes]]:
    return request.headers.raw  # a new list each time


class PreparedHead:
    """The head of every request the engine's direct lane builds from one template,
    encoded once, up to its Content-Length (``head`` adds it: the one part that
    differs between them, and an open stream should not hold its own copy of the
    rest). Set on the request as ``PREPARED_HEAD``: an attribute, not an extension,
    so a request made from it (a redirect, which copies extensions) does not inherit
    it."""

    __slots__ = ("asks_close", "method", "origin", "start")

    def __init__(self, method: bytes, start: bytes, asks_close: bool, origin: Origin) -> None:
        self.method = method
        self.start = start  # the header lines, each with its CRLF, but no blank line
        self.asks_close = asks_close
        self.origin = origin  # where these requests go: origin_of their URL

    def head(self, content_length: int) -> bytes:
        """The whole head of a request whose body is ``content_length`` bytes."""
        return b"%sContent-Length: %d\r\n\r\n" % (self.start, content_length)


PREPARED_HEAD = "_deltastream_head"


def outgoing(
    request: httpx2.Request, forward: Callable[..., Any] | None
) -> tuple[bytes, bytes, bool, bool]:
    """(method, head, chunked, asks_close) of ``request``. ``forward``: the proxy's
    rewrite of the target and headers, for a request forwarded through it."""
    prepared: PreparedHead | None = getattr(request, PREPARED_HEAD, None)
    if prepared is not None and forward is None:
        head = prepared.head(len(request.content))
        return prepared.method, head, False, prepared.asks_close
    method = request.method.encode("ascii")
    headers = request_headers(request)
    target = request.url.raw_path
    if forward is not None:
        target, headers = forward(request.url, headers)
    chunked = declares_chunked(headers)
    return method, request_head(method, target, headers), chunked, asks_to_close(headers)


def whole_body(stream: httpx2.ByteStream) -> bytes:
    """A ``ByteStream``'s bytes, as its iterator gives them, without the generator it
    makes per request. From the stream itself, not the request's ``content``: an
    event hook or an auth flow may have replaced the stream since the request was
    built (a compressed or signed body), and the stream is what is sent."""
    data = stream._stream if type(stream) is httpx2.ByteStream else None
    return data if isinstance(data, bytes) else b"".join(stream)


def may_resend(request: httpx2.Request) -> bool:
    """Whether the request may go out again when a reused connection turns out to be
    stale: its body can be sent again, and it is a GET or HEAD or the caller said so."""
    return isinstance(request.stream, httpx2.ByteStream) and (
        request.method in _ALWAYS_RESENT or request.extensions.get(RESEND_STALE_EXTENSION) is True
    )


def while_waiting(request: httpx2.Request) -> None:
    """Run the request's ``WAITING_EXTENSION`` callable, if it has one: its request is
    out and the server is at work, so what the caller does there (setting up the
    stream that will read the answer) costs the answer no time. Left until the answer
    is in, the same work runs on a CPU just woken from the wait, slowly, and the first
    chunk waits for it."""
    hook = request.extensions.pop(WAITING_EXTENSION, None)  # once: not again on a resend
    if hook is not None:
        hook()


def nothing_came(
    resend: bool, send_error: httpx2.TransportError | None, cause: BaseException | None
) -> NoReturn:
    """The connection ended before any byte of the response: stale if the request may
    go out again, else the error that sending met, else the server hung up."""
    if resend:
        raise StaleConnection from cause
    if send_error is not None:
        raise send_error from cause
    raise httpx2.RemoteProtocolError("Server disconnected without sending a response.") from cause


def shutdown_socket(sock: Any, how: int) -> None:
    """``shutdown(how)`` on a socket, whatever wraps it. An ``SSLSocket``'s own
    ``shutdown`` unwraps TLS state a reading thread is using: the plain socket's is
    meant. uvloop's transports hand out a stand-in that refuses ``shutdown``; the
    descriptor under it does not."""
    if isinstance(sock, ssl.SSLSocket):
        socket.socket.shutdown(sock, how)
        return
    try:
        sock.shutdown(how)
    except TypeError:
        fd = sock.fileno()
        if fd < 0:  # its loop closed it already (a client moved on to a new loop)
            return
        borrowed = socket.socket(fileno=fd)
        try:
            borrowed.shutdown(how)
        finally:
            borrowed.detach()  # the descriptor stays its owner's


class NetworkStream:
    """What ``response.extensions["network_stream"]`` offers, as httpcore's does: the
    socket, the TLS object when there is one, and the two ends' addresses."""

    __slots__ = ("_sock", "_ssl_object")

    def __init__(self, sock: Any, ssl_object: Any = None) -> None:
        self._sock = sock
        if ssl_object is None and isinstance(sock, ssl.SSLSocket):
            ssl_object = sock
        self._ssl_object = ssl_object

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._sock
        if info == "ssl_object":
            return self._ssl_object
        if info == "server_addr" or info == "client_addr":
            try:
                return (
                    self._sock.getpeername() if info == "server_addr" else self._sock.getsockname()
                )
            except OSError:  # closed since
                return None
        return None


class _Held(Protocol):
    interrupted: bool  # the client was closed while it was in use (see Slots.close)


C = TypeVar("C", bound=_Held)
C_contra = TypeVar("C_contra", contravariant=True)


def make_response(
    head: ResponseHead, stream: Any, network_stream: NetworkStream
) -> httpx2.Response:
    """The ``httpx2.Response`` for a parsed head, its body ``stream`` the body's.

    What ``httpx2.Response(status, headers=..., stream=stream, extensions=...)`` sets,
    without its copies and checks: the head was parsed here, so its header list is
    already the bytes httpx2 would store (tests/test_transport.py holds the
    two to the same attributes)."""
    headers = filled_headers(
        head.fields,
        # What httpx2 would find by decoding every header on the first lookup.
        "ascii" if head.all_ascii else None,
    )
    response = _Response.__new__(_Response)
    response.status_code = head.status
    response.headers = headers
    response._request = None
    response.next_request = None
    response.extensions = {
        "http_version": head.http_version,
        "reason_phrase": head.reason,
        "network_stream": network_stream,
        BODY_EXTENSION: stream,
    }
    response.history = []
    response.is_closed = False
    response.is_stream_consumed = False
    response.default_encoding = "utf-8"
    response.stream = stream
    response._num_bytes_downloaded = 0
    return response


def filled_headers(items: list[tuple[bytes, bytes, bytes]], encoding: str | None) -> httpx2.Headers:
    """The ``httpx2.Headers`` holding ``items`` ((name, lower-case name, value), as
    httpx2 stores them), without its constructor's normalising of each one: for
    header lists known good (parsed here, or merged by httpx2 itself)."""
    headers = _Headers.__new__(_Headers)
    headers._list = items
    headers._encoding = encoding
    return headers


def header(headers: httpx2.Headers, name: bytes) -> str | None:
    """``headers.get(name)`` for a lower-case ASCII ``name``, looked for without a
    step of Python per header line (httpx2's ``get`` decodes and compares each one,
    and raises and catches a ``KeyError`` when the header is absent)."""
    items = headers._list
    keys = [*map(_key_of, items)]
    count = keys.count(name)
    if count == 1:
        return items[keys.index(name)][2].decode(headers.encoding)
    return headers.get(name.decode("ascii")) if count else None


_key_of = operator.itemgetter(1)
_Headers = httpx2.Headers
_Response = httpx2.Response


class Pool(Protocol[C_contra]):
    def release(self, conn: C_contra, reusable: bool) -> None: ...


class BodyState(Generic[C]):
    """What a response body does between reads, the same for both transports: strip
    the framing, and hand the connection back (to ``pool``) the moment the body is
    complete, or as unusable when it ends any other way."""

    __slots__ = (
        "conn",
        "decoder",
        "first",
        "first_cut",
        "pool",
        "received",
        "request",
        "reusable",
        "timed",
    )

    def __init__(
        self,
        conn: C | None,
        decoder: BodyDecoder,
        first: bytes,
        reusable: bool,
        pool: Pool[C],
        request: httpx2.Request,
    ) -> None:
        self.conn = conn  # None once given back
        self.decoder = decoder
        self.first = first  # the bytes that came with the head, framing and all
        self.first_cut = True  # see take_first
        self.reusable = reusable
        self.pool = pool  # not its bound release: an object fewer per open stream
        self.request = request
        # The request's read timeout was looked up, at the first read: not before, as
        # the engine's deadlines may change it once the response is in.
        self.timed = False
        self.received = 0  # body bytes (unframed), httpx2's num_bytes_downloaded

    def take_first(self) -> bytes:
        """Body bytes from what came with the head; b"" once all of it is taken.

        Its first event comes up alone when more than ``WHOLE_UNDER`` bytes follow
        it: a fast server sends a short stream whole with its head, and the first chunk
        should not wait while the rest is unframed and split into events. A shorter
        rest costs less to unframe than a read's pass of its own through the stream
        does, so it goes with the first event. (A cut anywhere is correct: the decoder
        takes its input in any pieces. This one is where the first event of a token
        stream ends, and its HTTP chunk with it.)"""
        while raw := self.first:
            cut = len(raw)
            if self.first_cut:
                self.first_cut = False
                end = raw.find(b"\n\n") + 2
                if 1 < end < cut - WHOLE_UNDER:
                    cut = end + 2 if raw.startswith(b"\r\n", end) else end
            self.first = raw[cut:]
            try:
                body = self.step(raw[:cut])
            except BaseException:
                self.finish(reusable=False)
                raise
            if body:
                return body
        return b""

    def step(self, data: bytes) -> bytes:
        """One read's bytes (b"" at EOF) in, the body bytes in them out. When the body
        ends, the connection goes back at once (``conn`` is None from then on)."""
        decoder = self.decoder
        if not data:
            decoder.eof()  # raises if the body was cut short
            self.finish(reusable=False)
            return b""
        body = decoder.feed(data)
        self.received += len(body)
        if decoder.complete:
            # Free the connection now, not when the caller asks for more.
            self.finish(reusable=self.ends_clean())
        return body

    def close(self) -> None:
        """Closed by the caller: reusable only if the whole body was read (what came
        with the head is read here: it may hold all the rest)."""
        if self.conn is not None:
            try:
                while self.first:
                    self.take_first()
            except httpx2.HTTPError:
                return  # take_first gave the connection back as unusable
        self.finish(reusable=self.decoder.complete and self.ends_clean())

    def finish(self, reusable: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self.pool.release(conn, reusable)

    def broken(self, exc: BaseException) -> BaseException:
        """A read failed: the connection goes back unusable. The error to raise: ``exc``,
        or, when the client was closed under this read, one that says so (the socket
        shut down then reads as a peer that closed or reset it)."""
        conn = self.conn
        self.finish(reusable=False)
        if conn is not None and conn.interrupted and isinstance(exc, httpx2.TransportError):
            error = ClientClosedError("The client was closed while the response was being read")
            error.__cause__ = exc
            return error
        return exc

    def closed_early(self) -> httpx2.ReadError | None:
        """The error for a read of a body that is over before its end (closed by its
        caller, or broken by an error already raised): a read that fails, as httpx2's
        do, not one that passes for the body's end."""
        if self.decoder.complete:
            return None
        return httpx2.ReadError("The response was closed before the end of its body")

    def ends_clean(self) -> bool:
        """Whether, the body being complete, the connection may carry another request:
        nothing came after it, and the response allows it."""
        decoder = self.decoder
        return self.reusable and not self.first and not decoder.leftover and not decoder.until_close


class ClientClosedError(httpx2.ReadError):
    """A read ended because its client was closed (see ``Slots.close``): not a fault of
    the connection to recover from, nothing to open again."""


class StaleConnection(Exception):
    """A reused connection died before any of the response arrived."""
