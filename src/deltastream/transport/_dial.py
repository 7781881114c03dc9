"""Opening TCP connections: Happy Eyeballs (RFC 8305), blocking and on an event loop.

A name often resolves to several addresses, and one of them may be dead: a broken IPv6
route drops packets without an answer. Trying the addresses one after the other under
one connect deadline spends the whole deadline on the dead one. So, as RFC 8305 asks:

- the addresses are tried in the resolver's order with the families interleaved (its
  section 4): IPv6, IPv4, IPv6, ... when the resolver put IPv6 first;
- a new attempt starts every ``ATTEMPT_DELAY`` while earlier ones are still pending,
  and at once when one fails (section 5); the first to connect wins, the others are
  closed.

The connect deadline counts from the first attempt (resolution has a deadline of its
own, on the event loop). When it passes, the sockets are asked whether they connected
before giving up: on a loop that is busy (ten thousand requests being built), the
kernel may have finished the handshake long before the loop looked, and a connection
that exists is not a timeout.

Errors are the standard library's: ``TimeoutError`` when the deadline passed,
``OSError`` (naming every address tried) when every attempt failed. The transports turn
them into httpx2's.
"""

from __future__ import annotations

import asyncio
import errno
import os
import selectors
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["ATTEMPT_DELAY", "Address", "adial", "aresolve", "dial", "interleave", "resolve"]

ATTEMPT_DELAY = 0.25  # RFC 8305 section 8: the recommended Connection Attempt Delay

# family, type, proto, sockaddr: what socket() and connect() need
Address = tuple[int, int, int, tuple[Any, ...]]
SocketOptions = Sequence[tuple[int, int, int]]

_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN}


def interleave(addresses: Iterable[Address]) -> list[Address]:
    """RFC 8305 section 4: the resolver's order, with the families taking turns from
    the first one's family on."""
    families: dict[int, list[Address]] = {}
    for address in addresses:
        families.setdefault(address[0], []).append(address)
    queues = list(families.values())
    ordered: list[Address] = []
    for index in range(max(map(len, queues), default=0)):
        ordered.extend(queue[index] for queue in queues if index < len(queue))
    return ordered


def _literal(host: str, port: int) -> list[Address] | None:
    """An IP address needs no resolver (nor, on an event loop, a thread)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        sockaddr: tuple[Any, ...] = (host, port) if family == socket.AF_INET else (host, port, 0, 0)
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, sockaddr)]
    return None


def resolve(host: str, port: int) -> list[Address]:
    found = _literal(host, port)
    if found is None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [(family, kind, proto, sockaddr) for family, kind, proto, _, sockaddr in infos]
    if not found:
        raise OSError(f"{host} resolved to no address")
    return interleave(found)


async def aresolve(
    loop: asyncio.AbstractEventLoop, host: str, port: int, time_limit: float | None
) -> list[Address]:
    """:func:`resolve` in the loop's default executor, within ``time_limit``. Also under
    uvloop, whose own resolver skips ``socket.getaddrinfo``: one resolver for both
    transports."""
    if _literal(host, port) is not None:
        return resolve(host, port)
    async with asyncio.timeout(time_limit):
        return await loop.run_in_executor(None, resolve, host, port)


def _describe(address: Address) -> str:
    host, port = address[3][:2]
    return f"[{host}]:{port}" if address[0] == socket.AF_INET6 else f"{host}:{port}"


def _failure(errors: list[tuple[Address, OSError]]) -> OSError:
    if len(errors) == 1:
        address, error = errors[0]
        return OSError(error.errno, f"{error.strerror or error} ({_describe(address)})")
    tried = "; ".join(f"{_describe(a)}: {e.strerror or e}" for a, e in errors)
    return OSError(f"All connection attempts failed: {tried}")


def _start(address: Address, options: SocketOptions) -> tuple[socket.socket, int]:
    """A non-blocking connect begun; its errno (0: connected already)."""
    sock = socket.socket(address[0], address[1], address[2])
    try:
        for option in options:
            sock.setsockopt(*option)
        sock.setblocking(False)
        return sock, sock.connect_ex(address[3])
    except BaseException:
        sock.close()
        raise


def _outcome(sock: socket.socket) -> int:
    """0 once connected, the error if the attempt failed, -1 while it is pending."""
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        return error
    try:
        sock.getpeername()
    except OSError:
        return -1
    return 0


def dial(
    addresses: Sequence[Address], timeout: float | None, options: SocketOptions = ()
) -> socket.socket:
    """A connected blocking socket to the first of ``addresses`` that answers."""
    deadline = None if timeout is None else time.monotonic() + timeout
    errors: list[tuple[Address, OSError]] = []
    pending: dict[socket.socket, Address] = {}
    upcoming = list(reversed(addresses))
    next_start = 0.0
    with selectors.DefaultSelector() as selector:
        try:
            while True:
                now = time.monotonic()
                if upcoming and (now >= next_start or not pending):
                    address = upcoming.pop()
                    sock, error = _start(address, options)
                    if not error:
                        return _won(sock, pending)
                    if error in _IN_PROGRESS:
                        pending[sock] = address
                        selector.register(sock, selectors.EVENT_WRITE)
                        next_start = now + ATTEMPT_DELAY
                    else:
                        sock.close()
                        errors.append((address, _error(error)))
                    continue
                if not pending:
                    raise _failure(errors)
                if deadline is not None and now >= deadline:
                    for sock in pending:
                        if _outcome(sock) == 0:
                            selector.unregister(sock)
                            return _won(sock, pending)
                    raise TimeoutError(f"timed out connecting after {timeout:g} s")
                wait = None if deadline is None else deadline - now
                if upcoming:
                    wait = next_start - now if wait is None else min(wait, next_start - now)
                for key, _ in selector.select(wait):
                    sock = key.fileobj  # type: ignore[assignment]
                    outcome = _outcome(sock)
                    if outcome < 0:
                        continue
                    selector.unregister(sock)
                    if outcome == 0:
                        return _won(sock, pending)
                    errors.append((pending.pop(sock), _error(outcome)))
                    sock.close()
                    next_start = 0.0  # a failure starts the next attempt at once
        finally:
            for sock in pending:
                sock.close()


def _won(sock: socket.socket, pending: dict[socket.socket, Address]) -> socket.socket:
    pending.pop(sock, None)
    sock.setblocking(True)
    return sock


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class _Race:
    """The attempts of one :func:`adial`, driven by the event loop's callbacks: a
    writer per pending socket, one timer for the next attempt, one for the deadline."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        addresses: Sequence[Address],
        timeout: float | None,
        options: SocketOptions,
    ) -> None:
        self.loop = loop
        self.upcoming = list(reversed(addresses))
        self.timeout = timeout
        self.options = options
        self.pending: dict[socket.socket, Address] = {}
        self.errors: list[tuple[Address, OSError]] = []
        self.result: asyncio.Future[socket.socket] = loop.create_future()
        self.stagger: asyncio.TimerHandle | None = None
        self.deadline: asyncio.TimerHandle | None = None

    async def run(self) -> socket.socket:
        if self.timeout is not None:
            self.deadline = self.loop.call_later(self.timeout, self._on_deadline)
        self._next()
        try:
            return await self.result
        except BaseException:
            # Cancelled after a socket won but before this task resumed: close it.
            result = self.result
            if result.done() and not result.cancelled() and result.exception() is None:
                result.result().close()
            raise
        finally:
            self._end()

    def _next(self) -> None:
        """Start attempts until one is pending, one connected, or none are left."""
        if self.stagger is not None:
            self.stagger.cancel()
            self.stagger = None
        while self.upcoming and not self.result.done():
            address = self.upcoming.pop()
            try:
                sock, error = _start(address, self.options)
            except OSError as exc:
                self.errors.append((address, exc))
                continue
            if not error:
                self._win(sock)
                return
            if error not in _IN_PROGRESS:
                sock.close()
                self.errors.append((address, _error(error)))
                continue
            self.pending[sock] = address
            self.loop.add_writer(sock.fileno(), self._on_writable, sock)
            if self.upcoming:
                self.stagger = self.loop.call_later(ATTEMPT_DELAY, self._next)
            return
        if not self.pending and not self.result.done():
            self.result.set_exception(_failure(self.errors))

    def _on_writable(self, sock: socket.socket) -> None:
        outcome = _outcome(sock)
        if outcome < 0 or self.result.done():
            return
        self.loop.remove_writer(sock.fileno())
        if outcome == 0:
            self._win(sock)
            return
        self.errors.append((self.pending.pop(sock), _error(outcome)))
        sock.close()
        self._next()

    def _on_deadline(self) -> None:
        self.deadline = None
        if self.result.done():
            return
        for sock in self.pending:
            if _outcome(sock) == 0:
                self.loop.remove_writer(sock.fileno())
                self._win(sock)
                return
        self.result.set_exception(TimeoutError(f"timed out connecting after {self.timeout:g} s"))

    def _win(self, sock: socket.socket) -> None:
        self.pending.pop(sock, None)
        if self.result.done():  # cancelled meanwhile
            sock.close()
        else:
            self.result.set_result(sock)

    def _end(self) -> None:
        for timer in (self.stagger, self.deadline):
            if timer is not None:
                timer.cancel()
        for sock in self.pending:
            self.loop.remove_writer(sock.fileno())
            sock.close()
        self.pending.clear()


async def adial(
    loop: asyncio.AbstractEventLoop,
    addresses: Sequence[Address],
    time_limit: float | None,
    options: SocketOptions = (),
) -> socket.socket:
    """:func:`dial` on an event loop: a connected non-blocking socket. The time limit
    is not an ``asyncio.timeout``: see the module's docstring."""
    race = _Race(loop, addresses, time_limit, options)
    sock = await race.run()
    return sock
