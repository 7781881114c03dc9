"""Request starts spread over the event loop's turns, so a burst of them cannot hold
up the streams already running.

An event loop runs, each turn, every callback that was ready when the turn began. A
thousand tasks that each start a request at once make one turn that builds and sends a
thousand requests before any response is read: every stream that was already running
waits the whole turn (about 100 ms here) for its next chunk, and so do the first chunks
of the streams just started (docs/benchmarks.md, "c1000": every-chunk p99 80 ms before,
about 11 ms with 16 starts a turn, 5 ms with 8, 24 ms with 32). :func:`start_turn` lets
:data:`STARTS_PER_TURN` starts through per turn and queues the rest in order, a few
more each turn; the reads of the running streams go in between. A lone request never
waits, and under an event loop that is not asyncio's (trio) nothing is paced.
"""

from __future__ import annotations

import asyncio
import collections
import threading

__all__ = ["STARTS_PER_TURN", "start_turn"]

STARTS_PER_TURN = 16
# The count of starts goes back to zero at the end of a turn, but only once it has
# reached this many: a lone request (one a turn, the common case) then costs no
# callback of its own, and no turn lets more than STARTS_PER_TURN through.
_RESET_AT = STARTS_PER_TURN // 2


class _Gate:
    """The starts of one event loop."""

    __slots__ = ("loop", "scheduled", "used", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.used = 0  # starts let through since the count was last reset
        self.scheduled = False  # a call of _next_turn is queued
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    def admit(self) -> bool:
        """Count a start in if this turn has room for it (and nobody waits before it)."""
        if self.used < STARTS_PER_TURN and not self.waiting:
            self.used += 1
            if self.used >= _RESET_AT:
                self._schedule()
            return True
        return False

    async def wait(self) -> None:
        future = self.loop.create_future()
        self.waiting.append(future)
        self._schedule()
        await future

    def _next_turn(self) -> None:
        self.scheduled = False
        self.used = 0
        waiting = self.waiting
        while waiting and self.used < STARTS_PER_TURN:
            future = waiting.popleft()
            if not future.done():  # else its task was cancelled while it waited
                future.set_result(None)
                self.used += 1
        if self.used >= _RESET_AT or waiting:
            self._schedule()

    def _schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._next_turn)


_local = threading.local()  # the gate of the loop last running in this thread


async def start_turn() -> None:
    """Return when this request may start: at once while fewer than
    :data:`STARTS_PER_TURN` started in this turn of the loop, else in a later turn."""
    gate: _Gate | None = getattr(_local, "gate", None)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio): nothing to pace by
        return
    if gate is None or gate.loop is not loop:
        gate = _local.gate = _Gate(loop)
    if not gate.admit():
        await gate.wait()
