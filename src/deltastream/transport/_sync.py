"""deltastream's own HTTP/1.1 transport for httpx2 (blocking sockets).

Why not httpx2's default transport: it goes through httpcore and h11, which turn every
HTTP chunk into events and iterator steps. An LLM stream is one small chunk per token,
so that machinery cost more than twice the rest of the client per token (measured in
docs/benchmarks.md). This transport reads up to 64 KiB per ``recv`` and strips the
chunk framing of all of it at once (``_h1.BodyDecoder``), so the client above sees
one ``bytes`` per read.

It plugs into ``httpx2.Client(transport=...)``, so everything above the transport is
httpx2's (auth, redirects, cookies, event hooks, proxies from the environment, which
httpx2 mounts on its own transports). It speaks HTTP/1.1 over TCP only: for HTTP/2, a
Unix socket or a local address, pass a client with httpx2's own transport.

The pool is per origin, LIFO, with a cap on open connections (waiters time out with
``httpx2.PoolTimeout``) and on idle ones; an idle connection the server has closed is
noticed before reuse, and a request whose body can be sent again goes out on another
connection when a reused one dies before any response byte (the keep-alive race).
"""

from __future__ import annotations

import collections
import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import httpx2

from ._h1 import BodyDecoder, ResponseStart, encode_chunk, request_head
from ._pool import Origin, Slots

__all__ = [
    "BODY_EXTENSION",
    "BodyState",
    "READ_SIZE",
    "HTTP11Transport",
    "NetworkStream",
    "StaleConnection",
    "default_limits",
    "origin_of",
    "request_headers",
    "timeouts_of",
]

READ_SIZE = 64 * 1024
BODY_EXTENSION = "deltastream.body"  # the response's body stream, read by _http.iter_body
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


def origin_of(url: httpx2.URL) -> Origin:
    scheme = url.raw_scheme
    if scheme not in (b"http", b"https"):
        raise httpx2.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}'")
    port = url.port or (443 if scheme == b"https" else 80)
    return scheme, url.raw_host, port


def timeouts_of(request: httpx2.Request) -> dict[str, float | None]:
    timeouts = request.extensions.get("timeout")
    return timeouts if isinstance(timeouts, dict) else {}


def request_headers(request: httpx2.Request) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in request.headers.raw]


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
        borrowed = socket.socket(fileno=sock.fileno())
        try:
            borrowed.shutdown(how)
        finally:
            borrowed.detach()  # the descriptor stays its owner's


class NetworkStream:
    """What ``response.extensions["network_stream"]`` offers: the socket, and the TLS
    object when there is one."""

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
        return None


class _Connection:
    __slots__ = ("idle_since", "origin", "sock")

    def __init__(self, sock: socket.socket, origin: Origin) -> None:
        self.sock = sock
        self.origin = origin
        self.idle_since = 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def looks_reusable(self, now: float, expiry: float | None) -> bool:
        """Idle, not expired, and the server has not closed it (nor sent anything)."""
        if expiry is not None and now - self.idle_since > expiry:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable


class _Waiter:
    """A thread waiting for the pool: handed a connection, or a slot (``conn`` None)."""

    __slots__ = ("conn", "granted", "origin")

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.granted = threading.Event()
        self.conn: _Connection | None = None


class _Pool:
    """Connections per origin (see :class:`Slots`).

    Waiters are served in order, as in the async pool: a freed connection (or, for
    another host, its slot) is handed to the first waiting thread directly, so a thread
    that asks again at once cannot take it first.
    """

    def __init__(self, limits: httpx2.Limits) -> None:
        self._slots: Slots[_Connection] = Slots(limits)
        self._lock = threading.Lock()
        self._waiters: collections.deque[_Waiter] = collections.deque()

    def acquire(self, origin: Origin, timeout: float | None) -> _Connection | None:
        """An idle connection to ``origin``, or None after reserving a slot for a new
        one (the caller connects, then :meth:`release` or :meth:`failed`)."""
        slots = self._slots
        with self._lock:
            if not self._waiters:
                conn = slots.take_idle(origin)
                if conn is not None:
                    return conn
                if slots.reserve():
                    return None
            waiter = _Waiter(origin)
            self._waiters.append(waiter)
        try:
            waiter.granted.wait(timeout)
        except BaseException:
            self._leave(waiter)
            raise
        with self._lock:
            if not waiter.granted.is_set():  # else handed over as the wait ended: take it
                self._waiters.remove(waiter)
                raise httpx2.PoolTimeout(
                    f"No connection free in the pool after {timeout} s "
                    f"({slots.max} open, the limit)"
                )
        return waiter.conn

    def _leave(self, waiter: _Waiter) -> None:
        """A waiter interrupted: out of the line, or what it was handed passed on."""
        with self._lock:
            if not waiter.granted.is_set():
                self._waiters.remove(waiter)
                return
        if waiter.conn is None:
            self.failed()
        else:
            self.release(waiter.conn, reusable=True)

    def _next_waiter(self) -> _Waiter | None:
        return self._waiters.popleft() if self._waiters else None

    def release(self, conn: _Connection, reusable: bool) -> None:
        with self._lock:
            waiter = self._next_waiter()
            if waiter is None:
                self._slots.put_back(conn, reusable)
                return
            waiter.conn = self._slots.hand_over(conn, reusable, waiter.origin)
            waiter.granted.set()

    def failed(self) -> None:
        """A reserved slot was not used (the connect failed): the next waiter gets it."""
        with self._lock:
            waiter = self._next_waiter()
            if waiter is None:
                self._slots.unreserve()
            else:
                waiter.granted.set()

    def close(self) -> None:
        with self._lock:
            self._slots.close_idle()


C = TypeVar("C")


class BodyState(Generic[C]):
    """What a response body does between reads, the same for both transports: strip
    the framing, and hand the connection back (to ``release``) the moment the body is
    complete, or as unusable when it ends any other way."""

    __slots__ = ("conn", "decoder", "first", "release", "reusable")

    def __init__(
        self,
        conn: C | None,
        decoder: BodyDecoder,
        first: bytes,
        reusable: bool,
        release: Callable[[C, bool], None],
    ) -> None:
        self.conn = conn  # None once given back
        self.decoder = decoder
        self.first = first  # body bytes that came with the head
        self.reusable = reusable
        self.release = release

    def take_first(self) -> bytes:
        first, self.first = self.first, b""
        return first

    def step(self, data: bytes) -> tuple[bytes, bool]:
        """One read's bytes (b"" at EOF) in; the body bytes and whether it ended out."""
        decoder = self.decoder
        if not data:
            decoder.eof()  # raises if the body was cut short
            self.finish(reusable=False)
            return b"", True
        body = decoder.feed(data)
        if decoder.complete:
            # Free the connection now, not when the caller asks for more.
            self.finish(reusable=self._reuse_after())
            return body, True
        return body, False

    def close(self) -> None:
        """Closed by the caller: reusable only if the whole body was read."""
        self.finish(reusable=self.decoder.complete and not self.first and self._reuse_after())

    def finish(self, reusable: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self.release(conn, reusable)

    def _reuse_after(self) -> bool:
        decoder = self.decoder
        return self.reusable and not decoder.leftover and not decoder.until_close


class _ResponseBody(httpx2.SyncByteStream):
    """The body of one response, read straight from the socket."""

    def __init__(self, state: BodyState[_Connection], request: httpx2.Request) -> None:
        self._state = state
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        state = self._state
        first = state.take_first()
        if first:
            yield first
        conn = state.conn
        if conn is None:
            return
        sock = conn.sock
        recv = sock.recv
        try:
            sock.settimeout(timeouts_of(self._request).get("read"))
            while True:
                try:
                    data = recv(READ_SIZE)
                except TimeoutError as exc:
                    raise httpx2.ReadTimeout(str(exc) or "timed out reading the body") from exc
                except OSError as exc:
                    raise httpx2.ReadError(str(exc) or type(exc).__name__) from exc
                body, ended = state.step(data)
                if body:
                    yield body
                if ended:
                    return
        except BaseException:
            state.finish(reusable=False)
            raise

    def close(self) -> None:
        self._state.close()

    def shutdown(self, how: int) -> None:
        """Shut the connection down while this body holds it, from any thread (the
        deadline watchdog, ``Stream.cancel``); once released it belongs to the pool and
        maybe another request, so then nothing."""
        conn = self._state.conn
        if conn is not None:
            shutdown_socket(conn.sock, how)


class HTTP11Transport(httpx2.BaseTransport):
    """An ``httpx2`` transport speaking HTTP/1.1 over a blocking socket per request."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        limits: httpx2.Limits | None = None,
        socket_options: Iterable[tuple[int, int, int]] | None = None,
    ) -> None:
        self._ssl = httpx2.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        self._socket_options = list(socket_options or ())
        self._pool = _Pool(limits or default_limits())

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        origin = origin_of(request.url)
        timeouts = timeouts_of(request)
        # A request goes out again on a stale connection only if its body can be re-sent.
        replayable = isinstance(request.stream, httpx2.ByteStream)
        while True:
            conn = self._pool.acquire(origin, timeouts.get("pool"))
            if conn is None:
                return self._exchange(self._connect(origin, timeouts), request, reused=False)
            try:
                return self._exchange(conn, request, reused=replayable)
            except StaleConnection:
                continue  # the server had closed it: take another one

    def _connect(self, origin: Origin, timeouts: dict[str, float | None]) -> _Connection:
        scheme, host, port = origin
        timeout = timeouts.get("connect")
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((host.decode("ascii"), port), timeout)
            for option in self._socket_options:
                sock.setsockopt(*option)
            if scheme == b"https":
                sock = self._ssl.wrap_socket(sock, server_hostname=host.decode("ascii"))
        except BaseException as exc:
            self._pool.failed()
            if sock is not None:
                sock.close()
            if isinstance(exc, TimeoutError):
                raise httpx2.ConnectTimeout(str(exc) or "timed out connecting") from exc
            if isinstance(exc, OSError):  # ssl.SSLError is one
                raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
            raise
        return _Connection(sock, origin)

    def _exchange(
        self, conn: _Connection, request: httpx2.Request, reused: bool
    ) -> httpx2.Response:
        timeouts = timeouts_of(request)
        method = request.method.encode("ascii")
        headers = request_headers(request)
        sock = conn.sock
        start = ResponseStart(method)
        try:
            self._send(conn, request, method, headers, timeouts.get("write"), reused)
            sock.settimeout(timeouts.get("read"))
            while True:
                try:
                    data = sock.recv(READ_SIZE)
                except TimeoutError as exc:
                    raise httpx2.ReadTimeout(
                        str(exc) or "timed out waiting for the response"
                    ) from exc
                except OSError as exc:
                    if reused and not start.received:
                        raise StaleConnection from exc
                    raise httpx2.ReadError(str(exc) or type(exc).__name__) from exc
                if not data:
                    if reused and not start.received:
                        raise StaleConnection
                    raise httpx2.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                started = start.feed(data)
                if started is not None:
                    break
        except BaseException:
            self._pool.release(conn, reusable=False)
            raise
        head, decoder, first = started
        reusable = start.reusable(head, headers)
        state = BodyState(conn, decoder, first, reusable, self._pool.release)
        if decoder.complete:  # nothing more to read: the connection is free now
            state.finish(reusable and not decoder.leftover)
        stream = _ResponseBody(state, request)
        return httpx2.Response(
            head.status,
            headers=head.headers,
            stream=stream,
            extensions={
                "http_version": head.http_version,
                "reason_phrase": head.reason,
                "network_stream": NetworkStream(sock),
                BODY_EXTENSION: stream,
            },
        )

    def _send(
        self,
        conn: _Connection,
        request: httpx2.Request,
        method: bytes,
        headers: list[tuple[bytes, bytes]],
        timeout: float | None,
        reused: bool,
    ) -> None:
        sock = conn.sock
        sock.settimeout(timeout)
        head = request_head(method, request.url.raw_path, headers)
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        body = request.stream
        try:
            if isinstance(body, httpx2.ByteStream) and not chunked:
                sock.sendall(head + b"".join(body))
            else:
                sock.sendall(head)
                assert isinstance(body, Iterable)
                for part in body:
                    if part:
                        sock.sendall(encode_chunk(part) if chunked else part)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except TimeoutError as exc:
            raise httpx2.WriteTimeout(str(exc) or "timed out sending the request") from exc
        except OSError as exc:
            if reused:
                raise StaleConnection from exc
            raise httpx2.WriteError(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        self._pool.close()


class StaleConnection(Exception):
    """A reused connection died before any of the response arrived."""
