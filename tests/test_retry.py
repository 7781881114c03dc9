"""Retry decisions and delays, as tables."""

from __future__ import annotations

import pytest

from deltastream.engine._retry import retry_delay, server_retry_after, should_retry


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (None, None, True),  # connection error
        (408, None, True),
        (409, None, True),
        (429, None, True),
        (500, None, True),
        (503, None, True),
        (400, None, False),
        (401, None, False),
        (404, None, False),
        (422, None, False),
        (400, {"x-should-retry": "true"}, True),
        (503, {"x-should-retry": "false"}, False),
        (503, {"x-should-retry": "maybe"}, True),
    ],
)
def test_should_retry(status: int | None, headers: dict[str, str] | None, expected: bool) -> None:
    assert should_retry(status, headers) is expected


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:30 GMT"}, 10.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "x", "retry-after": "2"}, 2.0),
    ],
)
def test_server_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert server_retry_after(headers, now=lambda: NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "headers", "rand", "expected"),
    [
        (0, None, 0.0, 0.5),
        (1, None, 0.0, 1.0),
        (2, None, 0.0, 2.0),
        (4, None, 0.0, 8.0),
        (10, None, 0.0, 8.0),  # capped
        (0, None, 1.0, 0.375),  # up to 25% jitter, downward only
        (3, None, 0.5, 3.5),
        (0, {"retry-after": "2"}, 0.9, 2.0),  # the server's word wins
        (0, {"retry-after": "120"}, 0.0, 120.0),
        (0, {"retry-after": "121"}, 0.0, None),  # too long: do not retry
        (0, {"retry-after": "0"}, 0.0, 0.5),  # not > 0: our own backoff
        (0, {"retry-after": "-5"}, 0.0, 0.5),
    ],
)
def test_retry_delay(
    attempt: int, headers: dict[str, str] | None, rand: float, expected: float | None
) -> None:
    assert retry_delay(attempt, headers, rand=lambda: rand, now=lambda: NOW) == expected
