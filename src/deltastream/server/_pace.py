"""Pacing: delays before the first event and between events.

The scripted backend paces its own events (:func:`.backends.scripted.stream_events`); recorded
``.sse`` files carry no timestamps, so a replay is paced by :func:`paced`, which puts a
:class:`Pause` before each event block: ``first`` before the first, ``between`` before
the others. ``Pace()`` (no delays) replays as fast as the socket takes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ._body import Pause

__all__ = ["Pace", "paced", "parse_replay_pace"]


@dataclass(frozen=True, slots=True)
class Pace:
    """Optional delays: before the first event, and between events after it."""

    tokens_per_second: float | None = None
    first_token_ms: float | None = None

    def first(self) -> float:
        return (self.first_token_ms or 0.0) / 1000

    def between(self) -> float:
        return 1 / self.tokens_per_second if self.tokens_per_second else 0.0


def parse_replay_pace(text: str) -> float | None:
    """``"asfast"`` is ``None``; otherwise a positive number of events per second."""
    if text.strip().lower() == "asfast":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise ValueError(f"replay pace must be 'asfast' or events per second > 0, not {text!r}")
    return value


async def paced(source: AsyncIterator[bytes], pace: Pace) -> AsyncIterator[bytes | Pause]:
    """``source``'s blocks with the pace's pauses in front of them."""
    first = True
    async for block in source:
        delay = pace.first() if first else pace.between()
        if delay:
            yield Pause(delay)
        first = False
        yield block
