"""deltastream's own HTTP/1.1 transport for httpx2 (blocking sockets).

Why not httpx2's default transport: it goes through httpcore and h11, which turn every
HTTP chunk into events and iterator steps. An LLM stream is one small chunk per token,
so that machinery cost more than twice the rest of the client per token (measured in
docs/benchmarks.md). This transport reads up to 64 KiB per ``recv`` and strips the
chunk framing of all of it at once (``_h1.BodyDecoder``), so the client above sees
one ``bytes`` per read.

It plugs into ``httpx2.Client(transport=...)``, so everything above the transport is
httpx2's (auth, redirects, cookies, event hooks). A client given a transport reads no
proxy settings from the environment: ``sync_http_client`` (``_clients``) builds one
that does, with this transport for direct origins and for ``http://`` proxies
(``proxy=``, see ``_proxy``). It speaks HTTP/1.1 over TCP only: for HTTP/2, a Unix
socket or a local address, pass a client with httpx2's own transport.

Connections are opened by ``_dial`` (Happy Eyeballs), TLS comes from ``_tls`` (built on
the first https origin, ALPN ``http/1.1``). The pool is per origin, LIFO, with a cap on
open connections (waiters time out with ``httpx2.PoolTimeout``) and on idle ones; an
idle connection the server has closed is noticed before reuse (``poll``, which takes
any descriptor, unlike ``select``).

Re-sending: when a reused connection dies before any response byte (the keep-alive
race), the request goes out again on another connection only if its body can be sent
again and it is a GET or HEAD, or the caller allowed it (``RESEND_STALE_EXTENSION``:
the clients set it while their retry policy has retries left). A POST that starts a
generation is never sent twice behind the caller's back.

A server may answer before it has read the whole request (a 413 for a body over its
limit) and close: when sending fails and an answer is waiting, the answer is returned
(RFC 9112 9.5), and the connection is dropped after it.
"""

from __future__ import annotations

import collections
import select
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpx2

from ._common import (
    READ_SIZE,
    BodyState,
    NetworkStream,
    StaleConnection,
    default_limits,
    make_response,
    may_resend,
    nothing_came,
    outgoing,
    readable_now,
    request_origin,
    shutdown_socket,
    timeouts_of,
    while_waiting,
    whole_body,
)
from ._dial import dial, resolve
from ._h1 import ResponseStart, encode_chunk
from ._pool import Origin, Slots
from ._proxy import ProxyRoute, TunnelReply
from ._tls import TLSConfig

__all__ = ["HTTP11Transport"]

# A plain TCP socket on Linux stays blocking, and its timeouts are the kernel's
# (SO_SNDTIMEO, SO_RCVTIMEO), set only when they change: Python's own timeout costs an
# ioctl each time it is set and a poll() before every send and recv, and system calls
# are what a request spends the most time in besides its own Python. An expired one
# fails the call with EAGAIN (BlockingIOError). TLS sockets, and other systems, keep
# Python's timeouts.
_KERNEL_TIMEOUTS = sys.platform == "linux"
_TIMED_OUT = (TimeoutError, BlockingIOError)
_UNSET = -1.0  # no timeout known to be set yet


def _timeval(seconds: float | None) -> bytes:
    if seconds is None:
        return struct.pack("@ll", 0, 0)  # zero: no timeout
    whole, fraction = divmod(max(seconds, 1e-6), 1.0)  # zero would mean none
    return struct.pack("@ll", int(whole), max(int(fraction * 1e6), 0))


class _Connection:
    __slots__ = (
        "__weakref__",
        "_kernel",
        "_poller",
        "_read",
        "_unbounded",
        "_write",
        "idle_since",
        "interrupted",
        "network_stream",
        "origin",
        "sock",
    )

    def __init__(self, sock: socket.socket, origin: Origin) -> None:
        self.sock = sock
        self.origin = origin
        self.idle_since = 0.0
        self.interrupted = False
        self.network_stream = NetworkStream(sock)  # one per connection, not per response
        self._kernel = _KERNEL_TIMEOUTS and not isinstance(sock, ssl.SSLSocket)
        if self._kernel:
            sock.settimeout(None)
        # What the socket's timeouts are now (one value for both, with Python's).
        self._read: float | None = _UNSET
        self._write: float | None = _UNSET
        self._unbounded = False  # see read_timeout
        self._poller: Any = None  # made at the first reuse check, kept

    def close(self) -> None:
        # Not contextlib.suppress: as __del__ it may run at interpreter exit, when this
        # module's globals may be gone.
        try:  # noqa: SIM105
            self.sock.close()
        except OSError:
            pass

    # A response dropped unread lets its connection go with it (the pool holds it
    # weakly): its socket is closed then, as the pool would have closed it, not left to
    # warn of itself as it is freed (httpx2's pool keeps such a connection until the
    # client closes).
    __del__ = close

    def interrupt(self) -> None:
        # Shut down, not closed: another thread may be blocked reading it, and a closed
        # descriptor's number can be reused under that read. One the peer has already
        # reset cannot be shut down (and its reader is told of the reset).
        try:
            shutdown_socket(self.sock, socket.SHUT_RDWR)
        except OSError:
            return
        self.interrupted = True

    def read_timeout(self, seconds: float | None) -> None:
        """Bound each receive by ``seconds`` (None: no bound) from now on.

        No bound keeps the socket's present one in place, and :meth:`recv` makes
        again a receive that times out under it. A stream's body asks for none and the
        next request's head for its bound again, and this spares the socket two
        changes per request."""
        self._unbounded = seconds is None
        if seconds == self._read or (seconds is None and self._read is not _UNSET):
            return
        if self._kernel:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
        else:
            self.sock.settimeout(seconds)
            self._write = seconds
        self._read = seconds

    def recv(self) -> bytes:
        """One read from the socket, within the read timeout set last."""
        while True:
            try:
                return self.sock.recv(READ_SIZE)
            except _TIMED_OUT:
                if not self._unbounded:
                    raise

    def write_timeout(self, seconds: float | None) -> None:
        """Bound each send by ``seconds`` (None: no bound) from now on."""
        if seconds == self._write:
            return
        if self._kernel:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(seconds))
        else:
            self.sock.settimeout(seconds)
            self._read = seconds
        self._write = seconds

    def looks_reusable(self, ask_kernel: bool) -> bool:
        sock = self.sock
        try:
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return False  # the server said something after the last response
            return not ask_kernel or not self._polled_readable()
        except (OSError, ValueError):
            return False

    def _polled_readable(self) -> bool:
        """``readable_now`` with this connection's poller, made once and kept."""
        if not hasattr(select, "poll"):
            return readable_now(self.sock)
        poller = self._poller
        if poller is None:
            poller = self._poller = select.poll()
            poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(0))


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

    def acquire(
        self, origin: Origin, timeout: float | None, resendable: bool
    ) -> _Connection | None:
        """An idle connection to ``origin``, or None after reserving a slot for a new
        one (the caller connects, then :meth:`release` or :meth:`failed`).
        ``resendable``: see ``Slots.take_idle``."""
        slots = self._slots
        with self._lock:
            if not self._waiters:
                conn = slots.take_idle(origin, resendable)
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

    def adopt(self, conn: _Connection) -> _Connection:
        with self._lock:
            self._slots.adopt(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            self._slots.close()


class _ResponseBody(BodyState[_Connection], httpx2.SyncByteStream):
    """The body of one response, read straight from the socket: its state between
    reads (``BodyState``) and its iterator in one object. Its own iterator, not a
    generator: a reader that stops at the end of the stream's events (before the
    body's own end) leaves nothing to close by raising into it."""

    __slots__ = ()  # no instance dict is made: an open stream holds one

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.first and (first := self.take_first()):  # a call only while there is some
            return first
        while (conn := self.conn) is not None:
            try:
                if not self.timed:
                    conn.read_timeout(timeouts_of(self.request).get("read"))
                    self.timed = True
                try:
                    data = conn.recv()
                except _TIMED_OUT as exc:
                    raise httpx2.ReadTimeout(str(exc) or "timed out reading the body") from exc
                except OSError as exc:
                    raise httpx2.ReadError(str(exc) or type(exc).__name__) from exc
                body = self.step(data)
            except BaseException as exc:
                raise self.broken(exc)  # noqa: B904 - exc itself, or an error caused by it
            if body:
                return body  # if it ended the body, step() gave the connection back
        if (early := self.closed_early()) is not None:
            raise early
        raise StopIteration

    @property
    def holds_connection(self) -> bool:
        """Whether the body still has its connection (else it ended, or was closed:
        either way nothing more will be read)."""
        return self.conn is not None

    def shutdown(self, how: int) -> None:
        """Shut the connection down while this body holds it, from any thread (the
        deadline watchdog, ``Stream.cancel``); once released it belongs to the pool and
        maybe another request, so then nothing."""
        conn = self.conn
        if conn is not None:
            shutdown_socket(conn.sock, how)


class HTTP11Transport(httpx2.BaseTransport):
    """An ``httpx2`` transport speaking HTTP/1.1 over a blocking socket per request.

    ``proxy``: an ``http://`` proxy that every request goes through (forwarded for
    http:// origins, tunnelled for https:// ones); see ``sync_http_client`` for proxies
    chosen per origin and from the environment.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        limits: httpx2.Limits | None = None,
        socket_options: Iterable[tuple[int, int, int]] | None = None,
        proxy: httpx2.Proxy | httpx2.URL | str | None = None,
    ) -> None:
        self._tls = TLSConfig(verify, cert, trust_env)
        self._socket_options = list(socket_options or ())
        self._proxy = None if proxy is None else ProxyRoute(proxy)
        self._pool = _Pool(limits or default_limits())

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        origin = request_origin(request)
        timeouts = timeouts_of(request)
        resend = may_resend(request)
        while True:
            conn = self._pool.acquire(origin, timeouts.get("pool"), resend)
            if conn is None:
                conn = self._connect(origin, timeouts)
                return self._exchange(conn, request, timeouts, resend=False)
            try:
                return self._exchange(conn, request, timeouts, resend=resend)
            except StaleConnection:
                continue  # the server had closed it: take another one

    def _connect(self, origin: Origin, timeouts: dict[str, float | None]) -> _Connection:
        scheme, raw_host, port = origin
        host = raw_host.decode("ascii")
        timeout = timeouts.get("connect")
        proxy = self._proxy
        sock: socket.socket | None = None
        try:
            if proxy is None:
                sock = dial(resolve(host, port), timeout, self._socket_options)
            else:
                sock = dial(resolve(proxy.host, proxy.port), timeout, self._socket_options)
                if scheme == b"https":
                    _open_tunnel(sock, proxy, origin, timeouts)
            if scheme == b"https":
                sock.settimeout(timeout)
                sock = self._tls.context().wrap_socket(sock, server_hostname=host)
        except BaseException as exc:
            self._pool.failed()
            if sock is not None:
                sock.close()
            if isinstance(exc, TimeoutError):
                raise httpx2.ConnectTimeout(str(exc) or "timed out connecting") from exc
            if isinstance(exc, OSError):  # ssl.SSLError is one
                raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
            raise
        return self._pool.adopt(_Connection(sock, origin))

    def _exchange(
        self,
        conn: _Connection,
        request: httpx2.Request,
        timeouts: dict[str, float | None],
        resend: bool,
    ) -> httpx2.Response:
        """Send ``request`` on ``conn`` and read the response head. ``timeouts``: the
        request's. ``resend``: the connection is a reused one and the request may go
        out again if it was stale (raises ``StaleConnection``)."""
        forward = self._proxy.forward if self._proxy and conn.origin[0] == b"http" else None
        sock = conn.sock
        send_error: httpx2.TransportError | None = None
        try:
            method, head_bytes, chunked, asks_close = outgoing(request, forward)
            start = ResponseStart(method)
            conn.write_timeout(timeouts.get("write"))
            try:
                _send(sock, request, head_bytes, chunked)
            except (httpx2.WriteError, httpx2.WriteTimeout) as exc:
                if not readable_now(sock):
                    if resend and isinstance(exc, httpx2.WriteError):
                        raise StaleConnection from exc
                    raise
                send_error = exc  # an answer (or the end) is waiting: read it first
            while_waiting(request)
            conn.read_timeout(timeouts.get("read"))
            while True:
                try:
                    data = conn.recv()
                except _TIMED_OUT as exc:
                    raise httpx2.ReadTimeout(
                        str(exc) or "timed out waiting for the response"
                    ) from exc
                except OSError as exc:
                    if not start.received:
                        nothing_came(resend, send_error, exc)
                    raise httpx2.ReadError(str(exc) or type(exc).__name__) from exc
                if not data:
                    if not start.received:
                        nothing_came(resend, send_error, None)
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
        # After an early answer the server has not read the rest of the request.
        reusable = start.reusable(head, asks_close) and send_error is None
        body = _ResponseBody(conn, decoder, first, reusable, self._pool, request)
        if decoder.complete:  # no body to read: the connection is free now
            body.finish(body.ends_clean())
        return make_response(head, body, conn.network_stream)

    def close(self) -> None:
        self._pool.close()


def _send(sock: socket.socket, request: httpx2.Request, head: bytes, chunked: bool) -> None:
    body = request.stream
    try:
        if isinstance(body, httpx2.ByteStream) and not chunked:
            sock.sendall(head + whole_body(body))
        else:
            sock.sendall(head)
            assert isinstance(body, Iterable)
            for part in body:
                if part:
                    sock.sendall(encode_chunk(part) if chunked else part)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except _TIMED_OUT as exc:
        raise httpx2.WriteTimeout(str(exc) or "timed out sending the request") from exc
    except OSError as exc:
        raise httpx2.WriteError(str(exc) or type(exc).__name__) from exc


def _open_tunnel(
    sock: socket.socket, proxy: ProxyRoute, origin: Origin, timeouts: dict[str, float | None]
) -> None:
    """CONNECT through the proxy on ``sock`` to ``origin``; raises unless it agreed."""
    reply = TunnelReply()
    try:
        sock.settimeout(timeouts.get("write"))
        sock.sendall(proxy.connect_head(origin))
        sock.settimeout(timeouts.get("read"))
        while True:
            data = sock.recv(READ_SIZE)
            if not data:
                raise httpx2.RemoteProtocolError("The proxy closed the connection during CONNECT")
            if reply.feed(data):
                return
    except TimeoutError as exc:
        raise httpx2.ReadTimeout(str(exc) or "timed out waiting for the proxy") from exc
    except OSError as exc:
        raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
