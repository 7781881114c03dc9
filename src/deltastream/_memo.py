"""``Memo``: a dict of values worth sharing, bounded by starting over."""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    """Values kept to be shared (one object for every equal key seen again). At
    ``limit`` entries it starts over: keys that never repeat cost churn, not growth.
    Read it as a dict (``get``); :meth:`keep` adds."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: K, value: V) -> V:
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
