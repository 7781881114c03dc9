"""Retry policy as pure functions: whether to retry, and how long to wait first.

Rules (the official SDK's, kept so behaviour is the same on either client):

- Retry connection errors, timeouts before the body, 408, 409, 429 and 5xx.
- ``x-should-retry: true|false`` from the server overrides the status rule.
- Wait what the server asks for (``retry-after-ms``, then ``Retry-After`` in seconds or
  as an HTTP date) when that is more than 0 and at most 120 s; a longer wait means do
  not retry. Otherwise back off ``min(0.5 * 2**attempt, 8)`` s, less up to 25% jitter.
- A stream is never retried once an event has reached the caller: that is the
  caller's rule, not this module's (it never sees events).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping

__all__ = ["MAX_RETRY_AFTER", "retry_delay", "server_retry_after", "should_retry"]

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 120.0
_RETRY_STATUSES = frozenset({408, 409, 429})


def should_retry(status: int | None, headers: Mapping[str, str] | None = None) -> bool:
    """``status`` None means the request failed before any response (connection error)."""
    if headers is not None:
        override = headers.get("x-should-retry")
        if override == "true":
            return True
        if override == "false":
            return False
    if status is None:
        return True
    return status in _RETRY_STATUSES or status >= 500


def server_retry_after(
    headers: Mapping[str, str] | None, now: Callable[[], float] = time.time
) -> float | None:
    """The delay the server asked for, in seconds, or None if it asked for none."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - now()


def retry_delay(
    attempt: int,
    headers: Mapping[str, str] | None = None,
    *,
    rand: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
) -> float | None:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    None means the server asked for a wait longer than we are willing to make.
    """
    asked = server_retry_after(headers, now)
    if asked is not None:
        if 0 < asked <= MAX_RETRY_AFTER:
            return asked
        if asked > MAX_RETRY_AFTER:
            return None
    base = min(INITIAL_DELAY * 2.0**attempt, MAX_DELAY)
    return base * (1 - 0.25 * rand())
