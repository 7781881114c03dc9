"""deltastream._memo: the bounded tables that share repeated values."""

from __future__ import annotations

from deltastream._memo import Memo


def test_a_memo_keeps_values_and_starts_over_at_its_limit() -> None:
    memo: Memo[str, int] = Memo(limit=3)
    assert [memo.keep(key, n) for n, key in enumerate("abc")] == [0, 1, 2]
    assert memo == {"a": 0, "b": 1, "c": 2}
    assert memo.keep("d", 3) == 3  # full: it starts over with this one
    assert memo == {"d": 3}
