"""The bookkeeping both transports' pools share: how many connections are open, and
which idle ones wait for reuse, per origin.

No locking and no waiting here. The sync pool calls in while holding its lock; the
async one runs on one event loop. Who waits for a connection, and in what order, is
each pool's own business.
"""

from __future__ import annotations

import time
import weakref
from typing import Generic, Protocol, TypeVar

import httpx2

__all__ = ["Origin", "PooledConnection", "Slots"]

Origin = tuple[bytes, bytes, int]


class PooledConnection(Protocol):
    origin: Origin
    idle_since: float
    interrupted: bool  # set by interrupt()

    def looks_reusable(self, ask_kernel: bool) -> bool:
        """The server has not closed it, nor sent anything, as far as is known;
        ``ask_kernel``: look at the socket itself (a system call), not only at what the
        connection has seen."""

    def close(self) -> None: ...

    def interrupt(self) -> None:
        """End the connection under whoever is using it: their next read finds it
        closed, and they give it back (to be closed)."""


C = TypeVar("C", bound=PooledConnection)

# An idle connection given back less than this long ago is reused on what is known of
# it, without asking the kernel whether the server has closed it since, when the
# request may go out again: a server closing it that soon costs no more than sending
# the request again on a new connection (see _common.nothing_came). What a server may
# send before it closes an idle connection (a 408) comes after its idle timeout, and
# those are seconds: gunicorn's 2, uvicorn's and Node's 5, nginx's 75.
RECENT = 1.0


class Slots(Generic[C]):
    """At most ``max_connections`` open and ``max_keepalive_connections`` idle."""

    __slots__ = ("closed", "connections", "expiry", "idle", "idle_count", "max", "max_idle", "open")

    def __init__(self, limits: httpx2.Limits) -> None:
        self.max = limits.max_connections
        self.max_idle = limits.max_keepalive_connections
        self.expiry = limits.keepalive_expiry
        self.idle: dict[Origin, list[C]] = {}
        self.idle_count = 0
        self.open = 0
        # Every connection open, idle or in use: those in use are the ones not idle.
        # Kept per connection, not per request, and weakly, as the socket of a
        # response dropped unclosed is let go with it.
        self.connections: weakref.WeakSet[C] = weakref.WeakSet()
        self.closed = False  # after close(), connections given back are closed too

    def take_idle(self, origin: Origin, resendable: bool) -> C | None:
        """The most recently used idle connection to ``origin`` that is not expired
        and still looks usable; those that do not are closed on the way.
        ``resendable``: the request it is for may go out again if the connection turns
        out stale (then one idle for less than ``RECENT`` is taken on what is known)."""
        idle = self.idle.get(origin)
        if not idle:
            return None
        now = time.monotonic()
        expiry = self.expiry
        while idle:
            conn = idle.pop()
            self.idle_count -= 1
            idle_for = now - conn.idle_since
            if (expiry is None or idle_for <= expiry) and conn.looks_reusable(
                not resendable or idle_for >= RECENT
            ):
                return conn
            self._close(conn)
        return None

    def reserve(self) -> bool:
        """Count one more open connection if the limit allows it, closing an idle
        connection (to any origin) to make room if need be."""
        if self.max is not None and self.open >= self.max and not self._evict_one():
            return False
        self.open += 1
        return True

    def adopt(self, conn: C) -> None:
        """A new connection, in the slot reserved for it, is in use. (One that connected
        while the pool was closed is used as one made after: a closed pool still serves
        new requests, as httpx2's does, and only keeps no connection.)"""
        self.connections.add(conn)

    def unreserve(self) -> None:
        """A reserved slot was not used after all (the connect failed)."""
        self.open -= 1

    def _evict_one(self) -> bool:
        for idle in self.idle.values():
            if idle:
                self._close(idle.pop(0))  # the longest idle
                self.idle_count -= 1
                return True
        return False

    def put_back(self, conn: C, reusable: bool) -> None:
        """Keep ``conn`` for reuse if it may be kept, else close it."""
        max_idle = self.max_idle
        if reusable and not self.closed and (max_idle is None or self.idle_count < max_idle):
            conn.idle_since = time.monotonic()
            self.idle.setdefault(conn.origin, []).append(conn)
            self.idle_count += 1
        else:
            self._close(conn)

    def _close(self, conn: C) -> None:
        self.connections.discard(conn)
        conn.close()
        self.open -= 1

    def hand_over(self, conn: C, reusable: bool, origin: Origin) -> C | None:
        """What a thread or task waiting for ``origin`` gets from the freed ``conn``:
        the connection itself if it can serve there; else None, its slot, and ``conn``
        is closed (the waiter connects anew). The open count does not change."""
        if reusable and conn.origin == origin and not self.closed and not conn.interrupted:
            return conn
        self.connections.discard(conn)
        conn.close()
        return None

    def close(self) -> None:
        """Close every idle connection and end those in use, as httpx2's pool does when
        its client closes (a stream still read then fails); from now on none is kept."""
        self.close_idle()
        for conn in list(self.connections):  # the idle ones are closed and gone
            conn.interrupt()

    def close_idle(self) -> None:
        """Close every idle connection, leave those in use be; from now on none is kept."""
        self.closed = True
        for idle in self.idle.values():
            for conn in idle:
                self._close(conn)
        self.idle.clear()
        self.idle_count = 0
