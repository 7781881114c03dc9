"""Sending requests: headers, retries, and the one place lower-layer errors become ours.

``send`` and ``asend`` are twins: the same loop, one blocking and one awaiting. All
decisions they make come from pure functions (``_retry``, ``errors.status_error``), so
the two differ only in how they send, read and sleep.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import msgspec

from ..transport import BODY_EXTENSION, RESEND_STALE_EXTENSION, WAITING_EXTENSION
from ..transport._common import header
from ._deadlines import DEFAULT_TIMEOUT, Timeout
from ._direct import adirect_send, build, direct_send, lane
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    status_error,
)
from ._pacing import start_turn
from ._retry import retry_delay, should_retry

__all__ = [
    "ATTEMPT_EXTENSION",
    "ERROR_BODY_LIMIT",
    "RequestOptions",
    "asend",
    "aensure_event_stream",
    "aclose_response",
    "aiter_body",
    "aread_head",
    "check_event_stream",
    "close_response",
    "ensure_event_stream",
    "is_event_stream",
    "iter_body",
    "parse_error_body",
    "read_errors",
    "read_head",
    "send",
    "transport_error",
]

ERROR_BODY_LIMIT = 64 * 1024  # what we read of an error response's body
# Set on a response by whoever sent it: (sent at, first attempt started at, retries
# before it). One key, not three: three more keys would grow the response's
# extensions past the dict the transport made, to twice its size, on every stream.
ATTEMPT_EXTENSION = "deltastream_attempt"
_PREVIEW = 512  # what a content-type error quotes of the body
_json = msgspec.json.Encoder()
_CODING = b"content-encoding"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 3x as much
class RequestOptions:
    method: str
    url: str
    headers: dict[str, str]
    body: Any = None
    params: dict[str, Any] | None = None
    timeout: Timeout = DEFAULT_TIMEOUT
    max_retries: int = 2
    stream: bool = False
    require_done: bool = True
    while_waiting: Callable[[], None] | None = None

    def build(
        self,
        http: httpx2.Client | httpx2.AsyncClient,
        *,
        resend_stale: bool = False,
        within: float | None = None,
    ) -> tuple[httpx2.Request, Any]:
        """The request, and the transport to hand it to directly (None: through
        ``http.send``; see ``_direct``). ``resend_stale``: the transport may send it
        again on a fresh connection when a reused one turns out to be closed (the
        retry policy would). ``within``: the seconds left of the ``total`` deadline,
        which caps each phase's timeout (the request records which deadline each one
        is, for the error)."""
        headers = self.headers
        content = None
        if self.body is not None:
            content = _json.encode(self.body)
            headers = {**headers, "Content-Type": "application/json"}
        timeouts, names = _phase_timeouts(self.timeout, within)
        extensions: dict[str, Any] = {DEADLINES_EXTENSION: names}
        if resend_stale:
            extensions[RESEND_STALE_EXTENSION] = True
        if self.while_waiting is not None:
            extensions[WAITING_EXTENSION] = self.while_waiting
        url = _parsed_url(self.url)
        if content is not None and (transport := lane(http, url, self.params)) is not None:
            request = build(http, self.method, url, headers, content, timeouts, extensions)
            return request, transport
        request = http.build_request(
            self.method,
            url,
            content=content,
            params=self.params,
            headers=headers,
            timeout=timeouts,
            extensions=extensions,
        )
        return request, None


DEADLINES_EXTENSION = "deltastream.deadlines"  # phase -> (deadline name, seconds)
_PHASES = (("connect", "connect"), ("read", "first_token"), ("write", "write"), ("pool", "pool"))


def _phase_timeouts(
    timeout: Timeout, within: float | None
) -> tuple[httpx2.Timeout, dict[str, tuple[str, float]]]:
    """httpx2's per-phase timeouts for one attempt, and the deadline each one stands
    for: the phase's own, or ``total`` where less of it is left. Without ``total``
    they are the same for every request with this timeout: made once."""
    if within is None:
        return _fixed_phase_timeouts(timeout)
    return _phase_timeouts_within(timeout, within)


@functools.lru_cache(maxsize=64)
def _fixed_phase_timeouts(
    timeout: Timeout,
) -> tuple[httpx2.Timeout, dict[str, tuple[str, float]]]:
    return _phase_timeouts_within(timeout, None)


def _phase_timeouts_within(
    timeout: Timeout, within: float | None
) -> tuple[httpx2.Timeout, dict[str, tuple[str, float]]]:
    values: dict[str, float | None] = {}
    names: dict[str, tuple[str, float]] = {}
    own = {"connect": timeout.connect, "read": timeout.first_token, "write": timeout.write}
    own["pool"] = timeout.pool
    for phase, name in _PHASES:
        seconds = own[phase]
        if within is not None and (seconds is None or within < seconds):
            values[phase] = max(within, 0.0)
            names[phase] = ("total", timeout.total or within)
        else:
            values[phase] = seconds
            if seconds is not None:
                names[phase] = (name, seconds)
    return httpx2.Timeout(**values), names


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx2.URL:
    # A client sends to a handful of URLs; parsing one costs more than building the
    # rest of the request.
    return httpx2.URL(url)


def read_errors() -> tuple[type[BaseException], ...]:
    """What reading a body raises when its connection fails: httpx2's transport errors;
    an ``ssl.SSLError`` or anyio's ``EndOfStream`` that httpx2's TLS streams let through
    (its issue 854; openai counts them too); and the older ``httpx`` package's errors,
    from an ``http_client`` built on it (openai accepts one). Named in ``except`` clauses,
    so it runs only when something was raised, and imports nothing: a module not loaded
    raised nothing."""
    errors: list[type[BaseException]] = [httpx2.TransportError]
    modules = sys.modules
    if (ssl := modules.get("ssl")) is not None:
        errors.append(ssl.SSLError)
    if (anyio := modules.get("anyio")) is not None:
        errors.append(anyio.EndOfStream)
    if (legacy := modules.get("httpx")) is not None:
        errors.append(legacy.TransportError)
    return tuple(errors)


def transport_error(exc: BaseException, request: httpx2.Request) -> APIConnectionError:
    """The one mapping from transport errors (see :func:`read_errors`) to ours. A
    timeout is named for the deadline it enforced (``connect``, ``first_token``,
    ``write``, ``pool``, or ``total`` when that was the nearer), as the request recorded
    it."""
    if isinstance(exc, httpx2.TimeoutException) or _is_legacy_timeout(exc):
        phase = _TIMEOUT_PHASES.get(type(exc))
        names: dict[str, tuple[str, float]] = request.extensions.get(DEADLINES_EXTENSION, {})
        if phase is None or phase not in names:
            return APITimeoutError(request)
        deadline, seconds = names[phase]
        return APITimeoutError(request, deadline=deadline, seconds=seconds)
    detail = str(exc) or type(exc).__name__
    return APIConnectionError(message=f"Connection error: {detail}", request=request)


def _is_legacy_timeout(exc: BaseException) -> bool:
    legacy = sys.modules.get("httpx")
    return legacy is not None and isinstance(exc, legacy.TimeoutException)


_TIMEOUT_PHASES: dict[type[BaseException], str] = {
    httpx2.ConnectTimeout: "connect",
    httpx2.ReadTimeout: "read",
    httpx2.WriteTimeout: "write",
    httpx2.PoolTimeout: "pool",
}


def parse_error_body(data: bytes) -> object:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data.decode("utf-8", "replace")


def is_event_stream(content_type: str | None) -> bool:
    """Whether a Content-Type names an event stream. Media types are case-insensitive
    (``Text/Event-Stream`` is one too); the usual spelling is tested first."""
    if not content_type:
        return False
    return "text/event-stream" in content_type or "text/event-stream" in content_type.lower()


def check_event_stream(response: httpx2.Response, head: bytes | None) -> None:
    """Raise unless a 2xx answer to a streaming request is an event stream.

    ``head`` is the start of the body when the caller has read it (for the message).
    """
    content_type = response.headers.get("content-type", "")
    if is_event_stream(content_type):
        return
    message = (
        f"Expected a text/event-stream response to a streaming request, got "
        f"{content_type or 'no content type'!r}"
    )
    preview = None if head is None else head[:_PREVIEW].decode("utf-8", "replace")
    if preview is not None:
        message += f"; the body starts: {preview!r}"
    raise APIResponseValidationError(message, response=response, body=preview)


def ensure_event_stream(response: httpx2.Response) -> httpx2.Response:
    """The response, if it is an event stream; otherwise close it and raise, quoting
    the start of its body."""
    if not is_event_stream(header(response.headers, b"content-type")):
        try:
            head = read_head(response, _PREVIEW)
        finally:
            response.close()
        check_event_stream(response, head)
    return response


async def aensure_event_stream(response: httpx2.Response) -> httpx2.Response:
    """The async twin of :func:`ensure_event_stream`."""
    if not is_event_stream(header(response.headers, b"content-type")):
        try:
            head = await aread_head(response, _PREVIEW)
        finally:
            await response.aclose()
        check_event_stream(response, head)
    return response


def _status_failure(response: httpx2.Response, data: bytes) -> APIStatusError:
    return status_error(response, parse_error_body(data))


class Attempts:
    """The retry loop's decisions, the same for :func:`send` and :func:`asend`: what
    each attempt sends, whether and when a failure is tried again. One ``total``
    deadline bounds all of it, from the first attempt: every phase of an attempt is
    capped by what is left, and a retry whose wait would pass it is not taken."""

    __slots__ = ("attempt", "deadline_at", "options", "started_at")

    def __init__(self, options: RequestOptions) -> None:
        self.options = options
        self.attempt = 0
        self.started_at = time.monotonic()
        total = options.timeout.total
        self.deadline_at = None if total is None else self.started_at + total

    def request(self, http: httpx2.Client | httpx2.AsyncClient) -> tuple[httpx2.Request, Any]:
        """The next attempt's request, and the transport it goes to directly (or None)."""
        within = None if self.deadline_at is None else self.deadline_at - time.monotonic()
        retries_left = self.attempt < self.options.max_retries
        return self.options.build(http, resend_stale=retries_left, within=within)

    def succeeded(self, response: httpx2.Response, sent_at: float) -> httpx2.Response:
        response.extensions[ATTEMPT_EXTENSION] = (sent_at, self.started_at, self.attempt)
        return response

    def after_transport_error(
        self, exc: httpx2.TransportError, request: httpx2.Request
    ) -> tuple[APIConnectionError, float | None]:
        """The error, and the wait before the next attempt (None: raise it)."""
        error = transport_error(exc, request)
        if isinstance(exc, httpx2.PoolTimeout) or getattr(error, "deadline", None) == "total":
            return error, None  # a pool queue is not a fault; the whole time is up
        return error, self._delay(None)

    def after_status(
        self, response: httpx2.Response, data: bytes
    ) -> tuple[APIStatusError, float | None]:
        error = _status_failure(response, data)
        if not should_retry(response.status_code, response.headers):
            return error, None
        return error, self._delay(response.headers)

    def _delay(self, headers: httpx2.Headers | None) -> float | None:
        if self.attempt >= self.options.max_retries:
            return None
        delay = retry_delay(self.attempt, headers)
        deadline_at = self.deadline_at
        if (
            delay is not None
            and deadline_at is not None
            and time.monotonic() + delay >= deadline_at
        ):
            return None
        self.attempt += 1
        return delay


def send(
    http: httpx2.Client,
    options: RequestOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx2.Response:
    """Send with retries; return a response whose body has not been read (2xx only).

    ``response.extensions[ATTEMPT_EXTENSION]`` is (sent at, started at, retries):
    ``time.monotonic()`` when the successful attempt was sent (``first_token`` counts
    from it) and when the first one was (``total`` counts from it), and how many
    attempts came before it.
    """
    attempts = Attempts(options)
    while True:
        request, direct = attempts.request(http)
        sent_at = time.monotonic()
        try:
            if direct is None:
                response = http.send(request, stream=True)
            else:
                response = direct_send(http, direct, request)
        except httpx2.TransportError as exc:
            error, delay = attempts.after_transport_error(exc, request)
            if delay is None:
                raise error from exc
        else:
            if response.status_code < 400:
                return attempts.succeeded(response, sent_at)
            try:
                data = read_head(response)
            finally:
                response.close()
            status, delay = attempts.after_status(response, data)
            if delay is None:
                raise status
        sleep(delay)


async def asend(
    http: httpx2.AsyncClient,
    options: RequestOptions,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> httpx2.Response:
    """The async twin of :func:`send`."""
    attempts = Attempts(options)
    while True:
        await start_turn()
        request, direct = attempts.request(http)
        sent_at = time.monotonic()
        try:
            if direct is None:
                response = await http.send(request, stream=True)
            else:
                response = await adirect_send(http, direct, request)
        except httpx2.TransportError as exc:
            error, delay = attempts.after_transport_error(exc, request)
            if delay is None:
                raise error from exc
        else:
            if response.status_code < 400:
                return attempts.succeeded(response, sent_at)
            try:
                data = await aread_head(response)
            finally:
                await response.aclose()
            status, delay = attempts.after_status(response, data)
            if delay is None:
                raise status
        await sleep(delay)


def iter_body(response: httpx2.Response) -> Iterator[bytes]:
    """The body's bytes as they arrive. From our own transport, when the body is not
    content-encoded, straight from it: httpx2's decoder and chunker layers would add
    four objects and as many steps per read and change nothing."""
    body = response.extensions.get(BODY_EXTENSION)
    if isinstance(body, httpx2.SyncByteStream) and _untouched(response):
        response.is_stream_consumed = True  # as httpx2 marks a body it starts to read
        return iter(body)
    return response.iter_bytes()


def aiter_body(response: httpx2.Response) -> AsyncIterator[bytes]:
    """:func:`iter_body` for async responses."""
    body = response.extensions.get(BODY_EXTENSION)
    if isinstance(body, httpx2.AsyncByteStream) and _untouched(response):
        response.is_stream_consumed = True
        return aiter(body)
    return response.aiter_bytes()


def close_response(response: httpx2.Response) -> None:
    """``response.close()``. For a body from our own transport, without the context
    manager httpx2 wraps the close in (three calls more, per stream): it only names
    the request in a ``RequestError`` the close raises, and closing our body raises
    none."""
    if response.is_closed:
        return
    stream = response.stream
    if BODY_EXTENSION in response.extensions and isinstance(stream, httpx2.SyncByteStream):
        response.is_closed = True
        stream.close()
        _count_downloaded(response)
    else:
        response.close()


async def aclose_response(response: httpx2.Response) -> None:
    """The async twin of :func:`close_response`."""
    if response.is_closed:
        return
    stream = response.stream
    if BODY_EXTENSION in response.extensions and isinstance(stream, httpx2.AsyncByteStream):
        response.is_closed = True
        await stream.aclose()
        _count_downloaded(response)
    else:
        await response.aclose()


def _count_downloaded(response: httpx2.Response) -> None:
    """``response.num_bytes_downloaded``, which httpx2 counts as it reads a body, for a
    body read straight from our transport (which counts what it hands out)."""
    if not response._num_bytes_downloaded:
        body = response.extensions.get(BODY_EXTENSION)
        response._num_bytes_downloaded = getattr(body, "received", 0)


def _untouched(response: httpx2.Response) -> bool:
    """Not content-encoded, and not read by httpx2 already (an event hook may have
    called ``read()``: then httpx2 holds the body)."""
    return (
        not response.is_stream_consumed
        and not response.is_closed
        and (
            header(response.headers, _CODING) is None
            or all(
                coding.lower() == "identity"
                for coding in response.headers.get_list("content-encoding")
            )
        )
    )


def read_head(response: httpx2.Response, limit: int = ERROR_BODY_LIMIT) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        for data in response.iter_bytes():
            parts.append(data)
            size += len(data)
            if size >= limit:
                break
    except read_errors():
        pass  # an error body cut short still says what it can
    return b"".join(parts)[:limit]


async def aread_head(response: httpx2.Response, limit: int = ERROR_BODY_LIMIT) -> bytes:
    parts: list[bytes] = []
    size = 0
    try:
        async for data in response.aiter_bytes():
            parts.append(data)
            size += len(data)
            if size >= limit:
                break
    except read_errors():
        pass
    return b"".join(parts)[:limit]
