"""Stream deadlines: the ``Timeout`` value and the watchdog that enforces it.

A socket read timeout bounds each read, which is not what a stream needs: a server
that trickles a keep-alive comment every second never trips it, and nothing bounds
the stream as a whole. So once the response headers are in, each stream is watched:

- ``first_token``: request sent until the first event;
- ``idle``: the longest the server keeps the stream waiting between events (comments
  do not count unless ``comments_count`` is set). The clock stops while the consumer
  holds control, between handing it an event and its asking for the next;
- ``total``: the whole exchange, from the first attempt (retries and their waits
  included) to the last byte.

One daemon thread serves every stream of the process, sync and async alike. It sleeps
until the earliest deadline (kept in a heap, so ten thousand streams cost little more
than one); if the stream made progress meanwhile it sleeps again, otherwise it records
which deadline passed and shuts the socket down. The blocked read then fails, and the
stream raises ``APITimeoutError`` naming the deadline. The reader only stores a
timestamp per event, so the hot path pays next to nothing.

``unwatch`` takes no lock: it runs in generator finalizers, including at interpreter
exit, when a daemon thread may be frozen holding any lock it had. It clears a flag the
watchdog checks right before a shutdown. With deltastream's transports what it shuts
down is the response body, which does nothing once it has given its connection back;
in the narrow race where that happens between the check and the shutdown, the
connection is lost to whichever request took it, which sees a transport error.
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any, Final

import httpx2

from ..transport import BODY_EXTENSION, shutdown_socket

__all__ = ["DEFAULT_TIMEOUT", "NO_TIMEOUT", "Timeout", "Watch", "shut_down", "watchdog"]

_COMPACT_MIN = 1024  # heap entries before finished watches are swept out


_FIELDS = ("connect", "first_token", "idle", "total", "write", "pool", "comments_count")


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET
# Each phase's default: connecting is quick or broken, a reasoning model may think for
# minutes before its first token, and a stream quiet for two minutes mid-answer is dead.
# Waiting for a free connection when all the pool's are streaming is a queue, not a
# fault, so it gets room (and is never retried: retrying only re-queues).
_DEFAULTS: Final[dict[str, float | None]] = {
    "connect": 5.0,
    "first_token": 300.0,
    "idle": 120.0,
    "total": None,
    "write": 30.0,
    "pool": 300.0,
}

_Seconds = float | _Unset | None
_Four = tuple[float | None, float | None, float | None, float | None]
_Whole = float | httpx2.Timeout | _Four | _Unset | None  # the first argument, as httpx's


def _phases(timeout: _Whole) -> dict[str, float | None]:
    """Each phase's deadline as ``timeout`` (``Timeout``'s first argument) sets it."""
    if timeout is _UNSET:
        return dict(_DEFAULTS)
    if isinstance(timeout, Timeout):
        return {name: getattr(timeout, name) for name in _DEFAULTS}
    if isinstance(timeout, (httpx2.Timeout, tuple)):
        other = httpx2.Timeout(timeout)
        return {
            "connect": other.connect,
            "first_token": other.read,
            "idle": other.read,
            "total": None,
            "write": other.write,
            "pool": other.pool,
        }
    seconds = None if timeout is None else float(timeout)
    return {name: None if name == "total" else seconds for name in _DEFAULTS}


class Timeout(httpx2.Timeout):
    """Deadlines for one request, in seconds; None disables one.

    ``Timeout()`` has defaults that suit LLM streams (5 s to connect, 300 s to the first
    token, 120 s idle, no total). It also takes ``httpx2.Timeout``'s forms, so code
    written for httpx or the official SDK keeps working: ``Timeout(10.0)`` bounds every
    phase but ``total`` by 10 s (``Timeout(None)``: no deadline at all), a keyword
    overrides one phase (``Timeout(60.0, connect=5.0)``), ``read=`` sets ``first_token``
    and ``idle``, and an ``httpx2.Timeout`` (or a tuple) is read the same way.

    It is an ``httpx2.Timeout`` (``read`` is what bounds waiting for the response
    head: ``first_token``, capped by ``total``), so it passes through httpx2 and the
    official SDK's options unchanged wherever they take a timeout.
    """

    first_token: float | None
    idle: float | None
    total: float | None
    comments_count: bool

    def __init__(
        self,
        timeout: _Whole = _UNSET,
        *,
        connect: _Seconds = _UNSET,
        read: _Seconds = _UNSET,
        first_token: _Seconds = _UNSET,
        idle: _Seconds = _UNSET,
        total: _Seconds = _UNSET,
        write: _Seconds = _UNSET,
        pool: _Seconds = _UNSET,
        comments_count: bool | None = None,
    ) -> None:
        phases = _phases(timeout)
        if read is not _UNSET:
            phases["first_token"] = phases["idle"] = read
        given = {
            "connect": connect,
            "first_token": first_token,
            "idle": idle,
            "total": total,
            "write": write,
            "pool": pool,
        }
        phases.update((name, value) for name, value in given.items() if value is not _UNSET)
        super().__init__(
            connect=phases["connect"],
            read=_min(phases["first_token"], phases["total"]),
            write=phases["write"],
            pool=phases["pool"],
        )
        self.first_token = phases["first_token"]
        self.idle = phases["idle"]
        self.total = phases["total"]
        if comments_count is None:
            comments_count = isinstance(timeout, Timeout) and timeout.comments_count
        self.comments_count = comments_count

    def _key(self) -> tuple[object, ...]:
        return (
            self.connect,
            self.first_token,
            self.idle,
            self.total,
            self.write,
            self.pool,
            self.comments_count,
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Timeout):
            return self._key() == other._key()
        if isinstance(other, httpx2.Timeout):
            # The same as httpx's when it bounds what httpx's would: each read alike
            # (``first_token`` and ``idle``), no total, comments not counted.
            same_reads = self.idle == self.first_token and self.total is None
            mine = (self.connect, self.read, self.write, self.pool)
            theirs = (other.connect, other.read, other.write, other.pool)
            return same_reads and not self.comments_count and mine == theirs
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ("connect", "first_token", "idle", "total", "write", "pool", "comments_count")
        inner = ", ".join(
            f"{name}={value!r}" for name, value in zip(fields, self._key(), strict=True)
        )
        return f"Timeout({inner})"

    @classmethod
    def of(cls, value: float | httpx2.Timeout | None) -> Timeout:
        """Read what users pass as ``timeout=``: ours, httpx2's, or a number of seconds
        (which, as in the official SDK, bounds every phase). None: the defaults."""
        if value is None:
            return DEFAULT_TIMEOUT
        return value if isinstance(value, Timeout) else cls(value)

    def transport(self) -> httpx2.Timeout:
        """The per-operation timeouts for httpx2. Until the headers are in only
        ``first_token`` applies to reading (with ``total`` as a cap)."""
        return httpx2.Timeout(
            connect=self.connect, read=self.read, write=self.write, pool=self.pool
        )

    def body_read(self) -> float | None:
        """A per-read backstop for the body; the watchdog enforces the real deadlines."""
        first, idle = self.first_token, self.idle  # once per request: no generator
        if first is None or (idle is not None and idle > first):
            first = idle
        return None if first is None else first + 1.0


DEFAULT_TIMEOUT = Timeout()
NO_TIMEOUT = Timeout(None)


class Watch:
    """The deadline state of one stream. The reader calls :meth:`progress` per read
    that brought events, :meth:`pause` while the consumer holds control and
    :meth:`resume` when it asks for more: ``idle`` measures the server, not the
    consumer (a consumer that spends a minute on one chunk loses nothing)."""

    __slots__ = (
        "active",
        "drain_until",
        "expired",
        "first_at",
        "last_at",
        "paused",
        "scheduled",
        "sock",
        "started",
        "timeout",
        "total_from",
    )

    def __init__(
        self, timeout: Timeout, started: float, sock: Any, total_from: float | None = None
    ) -> None:
        self.active = True
        self.timeout = timeout
        self.started = started  # the request was sent: first_token counts from here
        self.total_from = started if total_from is None else total_from
        self.sock = sock
        self.first_at: float | None = None
        self.last_at = started
        self.paused = False
        self.drain_until: float | None = None
        self.expired: tuple[str, float] | None = None
        self.scheduled: float | None = None  # the watchdog's entry for it comes due then

    @classmethod
    def of_response(
        cls,
        timeout: Timeout,
        response: httpx2.Response,
        sent_at: float,
        started_at: float | None = None,
    ) -> Watch:
        """The watch for a response whose headers are in (see :meth:`begin`)."""
        watch = cls(timeout, sent_at, None, started_at)
        watch.begin(response, sent_at, started_at)
        return watch

    def begin(
        self, response: httpx2.Response, sent_at: float, started_at: float | None = None
    ) -> None:
        """Watch ``response``, whose headers are in: on its socket, counting from
        ``sent_at`` (``total`` from ``started_at``, the first attempt), with the body's
        per-read timeout turned into a backstop."""
        self.started = self.last_at = sent_at
        self.total_from = sent_at if started_at is None else started_at
        if self.timeout.comments_count:
            self.first_at = sent_at  # any bytes count: only idle/total apply
        self.rebind(response)

    def rebind(self, response: httpx2.Response) -> None:
        """Watch ``response`` from now on (a resumed stream goes on with the same watch)."""
        self.sock = _socket_of(response)
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            # On a socket the watchdog keeps every deadline, and a read may wait as
            # long as it must: no per-read timer (a timer per connection held open,
            # on asyncio), no poll before each recv (sync). Without one, the backstop
            # is all there is.
            timeouts["read"] = None if self.sock is not None else self.timeout.body_read()

    def progress(self, now: float) -> None:
        """An event arrived at ``now`` (``time.monotonic()``)."""
        self.last_at = now
        if self.first_at is None:
            self.first_at = now
            # The idle deadline now applies, and it may fall before the first_token
            # deadline the watchdog has for it. Not if the watchdog looks before it
            # anyway: what is left (idle, total) cannot fall before its entry (total
            # was counted in it), and soonest() counted idle from the start.
            scheduled, idle = self.scheduled, self.timeout.idle
            if scheduled is None or (idle is not None and scheduled > now + idle):
                watchdog.poke(self)

    def pause(self) -> None:
        """The consumer has control: the idle clock stops."""
        self.paused = True

    def resume(self, now: float) -> None:
        """The consumer asks for more: the idle clock starts again from ``now``. (In
        this order: the watchdog reads ``paused`` first, then the time.)"""
        self.last_at = now
        self.paused = False

    def drain_by(self, until: float) -> None:
        """The stream is done; its body's end must come by ``until``, or the
        connection is dropped rather than waited for."""
        self.drain_until = until
        watchdog.poke(self)

    def soonest(self) -> float | None:
        """The earliest any of its deadlines can fall, as far as is known now: the
        watchdog's first look. Before the first event the idle deadline cannot fall
        before ``started + idle``, so counting it here spares the event that starts it
        a trip through the watchdog's lock (an early look only finds it still ahead)."""
        deadline = self.next_deadline()
        when = None if deadline is None else deadline[0]
        idle = self.timeout.idle
        if self.first_at is None and self.drain_until is None and idle is not None:
            return self.started + idle if when is None else min(when, self.started + idle)
        return when

    def next_deadline(self, now: float | None = None) -> tuple[float, str, float] | None:
        """(when, name, seconds) of the earliest deadline in force, or None. While the
        consumer holds control, the idle one is an idle from ``now`` (when given): the
        watchdog looks again then."""
        t = self.timeout
        if self.drain_until is not None:
            return (self.drain_until, "drain", 0.0)
        # Built without a list of candidates: this runs for every stream that starts.
        # On a tie the phase's own deadline is named, not total.
        found: tuple[float, str, float] | None = None
        if self.first_at is None:
            if t.first_token is not None:
                found = (self.started + t.first_token, "first_token", t.first_token)
        elif t.idle is not None:
            # paused first, then the time: resume() writes them in the other order
            since = now if self.paused and now is not None else self.last_at
            found = (since + t.idle, "idle", t.idle)
        total = t.total
        if total is not None and (found is None or self.total_from + total < found[0]):
            found = (self.total_from + total, "total", total)
        return found


def _socket_of(response: httpx2.Response) -> Any:
    """What to shut down to end this response's stream: with deltastream's transports
    the body itself, which does it only while it holds the connection (a watch that
    outlives its stream can then never hit a request that reuses the connection);
    otherwise the socket."""
    body = response.extensions.get(BODY_EXTENSION)
    if hasattr(body, "shutdown"):
        return body
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None  # e.g. MockTransport: nothing to shut down
    sock = stream.get_extra_info("socket")
    # asyncio hands out a TransportSocket wrapper: anything that can shut down will do.
    return sock if hasattr(sock, "shutdown") else None


def shut_down(target: Any) -> None:
    """Shut a stream's connection down, from any thread. An OSError means it is closed
    already: the reader finds out."""
    with contextlib.suppress(OSError):
        shutdown_socket(target, socket.SHUT_RDWR)


class _Watchdog:
    """One thread, one heap of (deadline, watch): O(log n) per stream, however many.

    An entry is only a hint: when it comes due, the watch's deadline is computed again
    (it moves on with every event) and pushed back if it is still ahead. An entry whose
    time is not the watch's ``scheduled`` one was superseded, and one of a finished
    watch no longer counts: each is dropped when it reaches the top at one of the
    thread's looks, due or not (so the thread sleeps until a watch still on), or when
    the heap is compacted.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()  # ties never compare two watches
        self._compact_at = _COMPACT_MIN
        self._wake_at: float | None = None  # when the thread looks next (None: idle)
        self._thread: threading.Thread | None = None

    def watch(self, watch: Watch) -> None:
        when = watch.soonest()
        if watch.sock is None or when is None:
            return  # nothing to enforce, or no socket to enforce it on
        with self._lock:  # the condition's own lock, without its Python-level wrapper
            self._push(watch, when)

    def poke(self, watch: Watch) -> None:
        """The watch's deadline may have moved earlier (the idle one now applies)."""
        deadline = watch.next_deadline()
        if watch.sock is None or deadline is None:
            return
        scheduled = watch.scheduled
        if scheduled is not None and scheduled <= deadline[0]:
            return  # its entry comes due first and is looked at again then
        # Bounded wait: never hang on a lock a frozen daemon thread holds at exit.
        if self._cond.acquire(timeout=1.0):
            try:
                self._push(watch, deadline[0])
            finally:
                self._cond.release()

    def unwatch(self, watch: Watch) -> None:
        """The stream is over. Its watch may stay in the heap until its entry comes
        due or the heap is compacted, so it lets go of the response body now: a
        thousand finished streams' requests and body states would wait there too."""
        watch.active = False  # no lock: see the module docstring
        watch.sock = None

    def _push(self, watch: Watch, when: float) -> None:
        watch.scheduled = when
        heapq.heappush(self._heap, (when, next(self._order), watch))
        if len(self._heap) >= self._compact_at:
            self._heap = [entry for entry in self._heap if entry[2].active]
            heapq.heapify(self._heap)
            self._compact_at = max(_COMPACT_MIN, 2 * len(self._heap))
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="deltastream-deadlines", daemon=True
            )
            self._thread.start()
        elif self._wake_at is None or when < self._wake_at:
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            try:
                self._serve()
            finally:  # it died: the next watch starts another
                self.thread_gone()

    def thread_gone(self) -> None:
        """No thread runs (it died, or this is a forked child): the next watch starts one."""
        self._thread = None
        self._wake_at = None

    def _serve(self) -> None:
        """The thread's loop, run with the lock held (``wait`` lets it go)."""
        while True:
            heap = self._heap
            now = time.monotonic()
            # Every entry at the top that no longer counts goes now, due or not: the
            # thread then sleeps until a watch that is still on. Else each finished
            # stream's entry woke it when it came due (once per request, a while after
            # it: a client making many short requests paid a wake-up for each).
            while heap:
                when, _, watch = heap[0]
                counts = watch.active and watch.scheduled == when
                if counts and when > now:
                    break
                heapq.heappop(heap)
                if not counts:
                    continue
                deadline = watch.next_deadline(now)
                if deadline is None:
                    watch.scheduled = None
                elif deadline[0] <= now:
                    watch.scheduled = None
                    self._expire(watch, deadline[1], deadline[2])
                else:
                    watch.scheduled = deadline[0]
                    heapq.heappush(heap, (deadline[0], next(self._order), watch))
            self._wake_at = heap[0][0] if heap else None
            self._cond.wait(None if self._wake_at is None else self._wake_at - now)

    def _expire(self, watch: Watch, name: str, seconds: float) -> None:
        watch.expired = (name, seconds)
        sock = watch.sock
        if sock is not None:
            shut_down(sock)


watchdog = _Watchdog()


if hasattr(os, "register_at_fork"):  # told once per fork, not asked by every watch
    os.register_at_fork(after_in_child=watchdog.thread_gone)
