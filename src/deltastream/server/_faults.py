"""Fault directives: what can go wrong on purpose, and how to ask for it.

A request asks for faults with the ``X-Deltastream-Fault`` header; a server can apply
some to every request (``create_app(default_faults=...)``, ``deltastream serve
--faults``). A request that carries the header uses its faults instead of the server's;
``X-Deltastream-Fault: none`` turns the server's faults off for one request.

Grammar (whitespace around names and values is ignored, names are case-insensitive)::

    faults    = directive *( ";" directive )
    directive = name [ "=" value ]

Counts are of the data events written so far (comment-only blocks and an omitted
``[DONE]`` do not count). "After N" means once N events have been written, so
``drop-after=0`` drops before the first event; a fault whose N is never reached does
nothing. Several directives combine; at one point they apply in the order garbage,
stall, many-lines, huge-line, error, reset, drop.

Streaming body faults:

``drop-after=N``
    close the connection after N events without ending the chunked body (the client
    sees a truncated body: "incomplete chunked read").
``reset-after=N``
    like ``drop-after`` but with a TCP reset (the client sees ``ECONNRESET``).
``stall-after=N:S``
    after N events, pause S seconds, then go on.
``error-after=N``
    after N events send ``event: error`` with an OpenAI error payload (``"code":
    "injected"``) and end the body (no ``[DONE]``).
``garbage-after=N``
    after N events send ``data: {this is not json`` as an event, then go on.
``no-done``
    leave out ``data: [DONE]``.
``headers-only``
    send the 200 and the event-stream headers, then nothing until the client goes away
    (at most 120 s, then the connection is dropped).
``trickle=S``
    send the comment ``: keep-alive`` every S seconds and never an event, until the
    client goes away (at most 10 minutes).
``content-type=X``
    answer with 200 and content type X (no parameters: ``;`` separates directives).
    A JSON type gets a JSON body (the non-streamed completion for the scripted
    backend); any other type gets the normal stream under that label.
``huge-line=B``
    after the first event, one line of B bytes (``data: xxx...``, no line end), written
    in 64 KiB pieces, then the body ends.
``many-lines=N``
    after the first event, one event made of N ``data: x`` lines; then the stream goes on.

HTTP status faults (every POST, streaming or not, once the request is valid):

``status=S``
    answer with HTTP status S (400-599) and an OpenAI-shaped error body.
``times=K``
    only the first K attempts (default 1); later attempts behave normally.
``key=ID``
    attempts are counted per ID; without it, per fault header value.
``retry-after=R`` / ``retry-after-ms=M``
    send ``Retry-After: R`` (seconds) / ``retry-after-ms: M`` with the error.
``should-retry=true|false``
    send ``x-should-retry`` with the error.

Example: ``X-Deltastream-Fault: status=429; times=2; retry-after-ms=10; key=t1``
fails the first two attempts with key ``t1``, then streams normally.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Final

__all__ = ["AttemptCounter", "FaultParseError", "Faults", "parse_faults"]

MAX_SECONDS: Final = 600.0
_KEY_RE: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_CONTENT_TYPE_RE: Final = re.compile(r"[A-Za-z0-9!#$&^_.+\-]+/[A-Za-z0-9!#$&^_.+\-]+")


class FaultParseError(ValueError):
    """The fault header (or ``--faults``) is not valid; the message says why."""


@dataclass(frozen=True, slots=True)
class Faults:
    """The parsed directives; ``Faults()`` is "no faults"."""

    drop_after: int | None = None
    reset_after: int | None = None
    stall_after: tuple[int, float] | None = None
    error_after: int | None = None
    garbage_after: int | None = None
    no_done: bool = False
    headers_only: bool = False
    trickle: float | None = None
    content_type: str | None = None
    huge_line: int | None = None
    many_lines: int | None = None
    status: int | None = None
    times: int = 1
    key: str | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    should_retry: bool | None = None

    def __bool__(self) -> bool:
        return self != Faults()


def _count(value: str) -> int:
    if not value.isdigit():
        raise ValueError("expected a whole number >= 0")
    return int(value)


def _positive(value: str) -> int:
    number = _count(value)
    if number < 1:
        raise ValueError("expected a whole number >= 1")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not math.isfinite(number) or not 0 <= number <= MAX_SECONDS:
        raise ValueError(f"expected seconds between 0 and {MAX_SECONDS:g}")
    return number


def _stall(value: str) -> tuple[int, float]:
    events, sep, seconds = value.partition(":")
    if not sep:
        raise ValueError("expected N:S (events:seconds)")
    return _count(events), _seconds(seconds)


def _status(value: str) -> int:
    number = _count(value)
    if not 400 <= number <= 599:
        raise ValueError("expected an HTTP status between 400 and 599")
    return number


def _key(value: str) -> str:
    if not _KEY_RE.fullmatch(value):
        raise ValueError("expected 1-128 characters from A-Z a-z 0-9 _ . : -")
    return value


def _content_type(value: str) -> str:
    if not _CONTENT_TYPE_RE.fullmatch(value):
        raise ValueError("expected a media type such as application/json")
    return value.lower()


def _boolean(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError("expected true or false")
    return value.lower() == "true"


_VALUED: Final[dict[str, tuple[str, Callable[[str], object]]]] = {
    "drop-after": ("drop_after", _count),
    "reset-after": ("reset_after", _count),
    "stall-after": ("stall_after", _stall),
    "error-after": ("error_after", _count),
    "garbage-after": ("garbage_after", _count),
    "trickle": ("trickle", _seconds),
    "content-type": ("content_type", _content_type),
    "huge-line": ("huge_line", _positive),
    "many-lines": ("many_lines", _positive),
    "status": ("status", _status),
    "times": ("times", _positive),
    "key": ("key", _key),
    "retry-after": ("retry_after", _seconds),
    "retry-after-ms": ("retry_after_ms", _count),
    "should-retry": ("should_retry", _boolean),
}
_FLAGS: Final = {"no-done": "no_done", "headers-only": "headers_only"}
_NEED_STATUS: Final = ("times", "key", "retry-after", "retry-after-ms", "should-retry")
_FIELD_NAMES: Final = frozenset(field.name for field in fields(Faults))


def parse_faults(text: str | None) -> Faults:
    """Parse a fault header value; raise :class:`FaultParseError` saying what is wrong.

    ``None``, an empty string and ``none`` all mean no faults.
    """
    if text is None or text.strip().lower() in ("", "none"):
        return Faults()
    values: dict[str, object] = {}
    seen: list[str] = []
    for raw in text.split(";"):
        directive = raw.strip()
        if not directive:
            continue
        name, has_value, value = (part.strip() for part in directive.partition("="))
        name = name.lower()
        if name in seen:
            raise FaultParseError(f"fault directive {name!r} is given twice")
        seen.append(name)
        if name in _FLAGS:
            if has_value:
                raise FaultParseError(f"fault directive {name!r} takes no value")
            values[_FLAGS[name]] = True
        elif name in _VALUED:
            if not value:
                raise FaultParseError(f"fault directive {name!r} needs a value: {name}=...")
            attribute, convert = _VALUED[name]
            try:
                values[attribute] = convert(value)
            except ValueError as exc:
                raise FaultParseError(f"bad value {value!r} for {name!r}: {exc}") from None
        else:
            known = ", ".join(sorted([*_VALUED, *_FLAGS]))
            raise FaultParseError(f"unknown fault directive {name!r} (known: {known})")
    if "status" not in seen:
        needing = [name for name in _NEED_STATUS if name in seen]
        if needing:
            raise FaultParseError(f"{', '.join(needing)} only make sense with status=...")
    assert _FIELD_NAMES.issuperset(values)
    return replace(Faults(), **values)  # type: ignore[arg-type]


class AttemptCounter:
    """Counts attempts per key, for ``status`` with ``times``; keeps the newest keys only."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max_keys = max_keys

    def next_attempt(self, key: str) -> int:
        """Record one more attempt with ``key``; return its number, starting at 1."""
        count = self._counts.pop(key, 0) + 1
        self._counts[key] = count
        while len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)
        return count
