"""Sending requests: headers, retries, and the one place lower-layer errors become ours.

``send`` and ``asend`` are twins: the same loop, one blocking and one awaiting. All
decisions they make come from pure functions (``_retry``, ``errors.status_error``), so
the two differ only in how they send, read and sleep.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import msgspec

from ..transport import BODY_EXTENSION, RESEND_STALE_EXTENSION
from ._deadlines import DEFAULT_TIMEOUT, Timeout
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    status_error,
)
from ._retry import retry_delay, should_retry

__all__ = [
    "ERROR_BODY_LIMIT",
    "RequestOptions",
    "asend",
    "aensure_event_stream",
    "aiter_body",
    "aread_head",
    "check_event_stream",
    "ensure_event_stream",
    "iter_body",
    "parse_error_body",
    "read_head",
    "send",
    "transport_error",
]

ERROR_BODY_LIMIT = 64 * 1024  # what we read of an error response's body
_PREVIEW = 512  # what a content-type error quotes of the body
_json = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
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

    def build(
        self, http: httpx2.Client | httpx2.AsyncClient, *, resend_stale: bool = False
    ) -> httpx2.Request:
        """The request; ``resend_stale``: the transport may send it again on a fresh
        connection when a reused one turns out to be closed (the retry policy would)."""
        headers = dict(self.headers)
        content = None
        if self.body is not None:
            content = _json.encode(self.body)
            headers["Content-Type"] = "application/json"
        return http.build_request(
            self.method,
            _parsed_url(self.url),
            content=content,
            params=self.params,
            headers=headers,
            timeout=self.timeout.transport(),
            extensions={RESEND_STALE_EXTENSION: True} if resend_stale else None,
        )


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx2.URL:
    # A client sends to a handful of URLs; parsing one costs more than building the
    # rest of the request.
    return httpx2.URL(url)


def transport_error(exc: httpx2.TransportError, request: httpx2.Request) -> APIConnectionError:
    """The one mapping from httpx2's transport errors to ours."""
    if isinstance(exc, httpx2.TimeoutException):
        deadline = {
            httpx2.ConnectTimeout: "connect",
            httpx2.ReadTimeout: "read",
            httpx2.WriteTimeout: "write",
            httpx2.PoolTimeout: "pool",
        }.get(type(exc))
        seconds = None
        if deadline is not None:
            timeouts = request.extensions.get("timeout", {})
            seconds = timeouts.get(deadline)
        if seconds is None:
            return APITimeoutError(request)
        return APITimeoutError(request, deadline=deadline, seconds=seconds)
    detail = str(exc) or type(exc).__name__
    return APIConnectionError(message=f"Connection error: {detail}", request=request)


def parse_error_body(data: bytes) -> object:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data.decode("utf-8", "replace")


def check_event_stream(response: httpx2.Response, head: bytes | None) -> None:
    """Raise unless a 2xx answer to a streaming request is an event stream.

    ``head`` is the start of the body when the caller has read it (for the message).
    """
    content_type = response.headers.get("content-type", "")
    if "text/event-stream" in content_type:
        return
    preview = (head or b"")[:_PREVIEW].decode("utf-8", "replace")
    raise APIResponseValidationError(
        f"Expected a text/event-stream response to a streaming request, got "
        f"{content_type or 'no content type'!r}; the body starts: {preview!r}",
        response=response,
        body=preview,
    )


def ensure_event_stream(response: httpx2.Response) -> httpx2.Response:
    """The response, if it is an event stream; otherwise close it and raise, quoting
    the start of its body."""
    if "text/event-stream" not in response.headers.get("content-type", ""):
        try:
            head = read_head(response, _PREVIEW)
        finally:
            response.close()
        check_event_stream(response, head)
    return response


async def aensure_event_stream(response: httpx2.Response) -> httpx2.Response:
    """The async twin of :func:`ensure_event_stream`."""
    if "text/event-stream" not in response.headers.get("content-type", ""):
        try:
            head = await aread_head(response, _PREVIEW)
        finally:
            await response.aclose()
        check_event_stream(response, head)
    return response


def _status_failure(response: httpx2.Response, data: bytes) -> APIStatusError:
    return status_error(response, parse_error_body(data))


def send(
    http: httpx2.Client,
    options: RequestOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx2.Response:
    """Send with retries; return a response whose body has not been read (2xx only).

    The time the successful attempt was sent is in ``response.extensions["sent_at"]``
    (``time.monotonic()``), where the stream's deadlines count from.
    """
    attempt = 0
    while True:
        request = options.build(http, resend_stale=attempt < options.max_retries)
        sent_at = time.monotonic()
        try:
            response = http.send(request, stream=True)
        except httpx2.TransportError as exc:
            error: APIConnectionError | APIStatusError = transport_error(exc, request)
            retryable = attempt < options.max_retries and not isinstance(exc, httpx2.PoolTimeout)
            delay = retry_delay(attempt) if retryable else None
            if delay is None:
                raise error from exc
        else:
            if response.status_code < 400:
                response.extensions["sent_at"] = sent_at
                response.extensions["retries"] = attempt
                return response
            try:
                data = read_head(response)
            finally:
                response.close()
            error = _status_failure(response, data)
            delay = None
            if attempt < options.max_retries and should_retry(
                response.status_code, response.headers
            ):
                delay = retry_delay(attempt, response.headers)
            if delay is None:
                raise error
        sleep(delay)
        attempt += 1


async def asend(
    http: httpx2.AsyncClient,
    options: RequestOptions,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> httpx2.Response:
    """The async twin of :func:`send`."""
    attempt = 0
    while True:
        request = options.build(http, resend_stale=attempt < options.max_retries)
        sent_at = time.monotonic()
        try:
            response = await http.send(request, stream=True)
        except httpx2.TransportError as exc:
            error: APIConnectionError | APIStatusError = transport_error(exc, request)
            retryable = attempt < options.max_retries and not isinstance(exc, httpx2.PoolTimeout)
            delay = retry_delay(attempt) if retryable else None
            if delay is None:
                raise error from exc
        else:
            if response.status_code < 400:
                response.extensions["sent_at"] = sent_at
                response.extensions["retries"] = attempt
                return response
            try:
                data = await aread_head(response)
            finally:
                await response.aclose()
            error = _status_failure(response, data)
            delay = None
            if attempt < options.max_retries and should_retry(
                response.status_code, response.headers
            ):
                delay = retry_delay(attempt, response.headers)
            if delay is None:
                raise error
        await sleep(delay)
        attempt += 1


def iter_body(response: httpx2.Response) -> Iterator[bytes]:
    """The body's bytes as they arrive. From our own transport, when the body is not
    content-encoded, straight from it: httpx2's decoder and chunker layers would add
    four objects and as many steps per read and change nothing."""
    body = response.extensions.get(BODY_EXTENSION)
    if isinstance(body, Iterable) and _untouched(response):
        return iter(body)
    return response.iter_bytes()


def aiter_body(response: httpx2.Response) -> AsyncIterator[bytes]:
    """:func:`iter_body` for async responses."""
    body = response.extensions.get(BODY_EXTENSION)
    if isinstance(body, AsyncIterable) and _untouched(response):
        return aiter(body)
    return response.aiter_bytes()


def _untouched(response: httpx2.Response) -> bool:
    """Not content-encoded, and not read by httpx2 already (an event hook may have
    called ``read()``: then httpx2 holds the body)."""
    return (
        not response.is_stream_consumed
        and not response.is_closed
        and response.headers.get("content-encoding", "identity").lower() == "identity"
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
    except httpx2.TransportError:
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
    except httpx2.TransportError:
        pass
    return b"".join(parts)[:limit]
