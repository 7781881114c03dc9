"""Per-stream timing and volume figures, cheap enough to be always on.

The reader calls :meth:`StreamMetrics.on_read` once per network read (not per event),
with a timestamp it already took for the deadlines. Gaps between reads that brought
events go into a fixed set of logarithmic buckets, so memory stays constant however
long the stream and percentiles are exact to within one bucket (about 12%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["StreamMetrics"]

_BUCKETS = 160  # fewer than 256: a bucket is kept in a byte (see _recent)
_BASE = 1.125  # each bucket 12.5% wider than the last
_SMALLEST = 1e-6  # seconds; gaps below this land in bucket 0
_FOLD_AT = 64


def _bucket(seconds: float) -> int:
    if seconds <= _SMALLEST:
        return 0
    return min(_BUCKETS - 1, 1 + int(math.log(seconds / _SMALLEST, _BASE)))


def _upper_edge(bucket: int) -> float:
    return _SMALLEST * _BASE**bucket


@dataclass(slots=True)
class StreamMetrics:
    """What one stream cost in time and bytes. Times are seconds (``time.monotonic``)."""

    sent_at: float
    headers_at: float
    first_event_at: float | None = None
    first_token_at: float | None = None
    last_event_at: float | None = None
    chunks: int = 0
    bytes: int = 0
    reads: int = 0
    retries: int = 0
    resumes: int = 0
    completion_tokens: int | None = None
    max_gap: float = 0.0
    # The latest gaps' buckets, a byte each, folded into bucket -> count (only the
    # buckets used) every _FOLD_AT gaps: ten thousand open streams should not each
    # carry a table, let alone 160 zeros, for their first few gaps.
    _recent: bytearray | None = field(default=None, init=False, repr=False, compare=False)
    _counts: dict[int, int] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def time_to_first_byte(self) -> float:
        """Request sent until the response headers arrived."""
        return self.headers_at - self.sent_at

    @property
    def time_to_first_token(self) -> float | None:
        """Request sent until the first chunk with content (text, refusal, reasoning or
        tool-call arguments)."""
        return None if self.first_token_at is None else self.first_token_at - self.sent_at

    @property
    def duration(self) -> float | None:
        return None if self.last_event_at is None else self.last_event_at - self.sent_at

    @property
    def tokens_per_second(self) -> float | None:
        """Completion tokens (from usage, else one per chunk) over the generation time,
        first token to last event."""
        if self.first_token_at is None or self.last_event_at is None:
            return None
        elapsed = self.last_event_at - self.first_token_at
        tokens = self.completion_tokens if self.completion_tokens is not None else self.chunks
        return tokens / elapsed if elapsed > 0 else None

    def gap_percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) of the gaps between reads that brought events,
        as the upper edge of its bucket; None before two such reads."""
        counts = dict(self._counts or ())
        for bucket in self._recent or ():
            counts[bucket] = counts.get(bucket, 0) + 1
        total = sum(counts.values())
        if total == 0:
            return None
        rank = max(1, math.ceil(total * q / 100))
        seen = 0
        for bucket, count in sorted(counts.items()):
            seen += count
            if seen >= rank:
                return min(_upper_edge(bucket), self.max_gap)
        return self.max_gap

    @property
    def gap_p50(self) -> float | None:
        return self.gap_percentile(50)

    @property
    def gap_p95(self) -> float | None:
        return self.gap_percentile(95)

    def on_read(self, now: float, size: int, events: int) -> None:
        self.reads += 1
        self.bytes += size
        if not events:
            return
        self.chunks += events
        last = self.last_event_at
        if last is None:
            self.first_event_at = now
        else:
            gap = now - last
            recent = self._recent
            if recent is None:
                recent = self._recent = bytearray()
            recent.append(_bucket(gap))
            if len(recent) >= _FOLD_AT:
                self._fold(recent)
            if gap > self.max_gap:
                self.max_gap = gap
        self.last_event_at = now

    def _fold(self, recent: bytearray) -> None:
        counts = self._counts
        if counts is None:
            counts = self._counts = {}
        for bucket in recent:
            counts[bucket] = counts.get(bucket, 0) + 1
        recent.clear()

    def __repr__(self) -> str:
        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value * 1000:.1f} ms"

        rate = self.tokens_per_second
        return (
            f"StreamMetrics(ttfb={ms(self.time_to_first_byte)}, "
            f"ttft={ms(self.time_to_first_token)}, chunks={self.chunks}, bytes={self.bytes}, "
            f"gap_p50={ms(self.gap_p50)}, gap_p95={ms(self.gap_p95)}, "
            f"gap_max={ms(self.max_gap)}, "
            f"tokens_per_second={'n/a' if rate is None else f'{rate:.1f}'}, "
            f"retries={self.retries}, resumes={self.resumes})"
        )
