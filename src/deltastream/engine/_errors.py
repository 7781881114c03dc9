"""The exception hierarchy. Names and meanings match the official ``openai`` package::

    OpenAIError
     └─ APIError                      message, request, body, code, type, param,
         │                            partial, events_received
         ├─ APIStatusError            response, status_code, request_id
         │   ├─ BadRequestError            400
         │   ├─ AuthenticationError        401
         │   ├─ PermissionDeniedError      403
         │   ├─ NotFoundError              404
         │   ├─ ConflictError              409
         │   ├─ UnprocessableEntityError   422
         │   ├─ RateLimitError             429
         │   └─ InternalServerError        >= 500
         ├─ APIConnectionError        the transport failed
         │   ├─ APITimeoutError            a deadline passed (``deadline`` names which)
         │   ├─ StreamTruncatedError       the body ended before the stream said it was done
         │   └─ StreamGapError             events are missing (a jump in sequence_number)
         ├─ APIStreamError            the server reported an error inside the stream
         └─ APIResponseValidationError the response was not what the protocol promises
             └─ StreamDecodeError          a malformed or oversized event (``data``: what came)

Every error raised while a stream is being read carries ``partial`` (the result
accumulated from the events received before it, or None) and ``events_received``.
"""

from __future__ import annotations

from typing import Any

import httpx2

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "StreamDecodeError",
    "StreamGapError",
    "StreamTruncatedError",
    "UnprocessableEntityError",
]


class OpenAIError(Exception):
    """Base of every error deltastream raises."""


class APIError(OpenAIError):
    message: str
    request: httpx2.Request
    body: object | None
    code: str | None
    type: str | None
    param: str | None
    partial: Any
    events_received: int

    def __init__(
        self, message: str, request: httpx2.Request, *, body: object | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body
        fields = _error_fields(body)
        code = fields.get("code")
        self.code = None if code is None else str(code)
        self.type = _str_or_none(fields.get("type"))
        self.param = _str_or_none(fields.get("param"))
        self.partial = None
        self.events_received = 0


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status."""

    response: httpx2.Response
    status_code: int
    request_id: str | None

    def __init__(self, message: str, *, response: httpx2.Response, body: object | None) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code = response.status_code
        self.request_id = response.headers.get("x-request-id")


class BadRequestError(APIStatusError):
    pass


class AuthenticationError(APIStatusError):
    pass


class PermissionDeniedError(APIStatusError):
    pass


class NotFoundError(APIStatusError):
    pass


class ConflictError(APIStatusError):
    pass


class UnprocessableEntityError(APIStatusError):
    pass


class RateLimitError(APIStatusError):
    pass


class InternalServerError(APIStatusError):
    pass


class APIConnectionError(APIError):
    def __init__(self, *, message: str = "Connection error.", request: httpx2.Request) -> None:
        super().__init__(message, request)


class APITimeoutError(APIConnectionError):
    deadline: str | None
    seconds: float | None

    def __init__(
        self,
        request: httpx2.Request,
        *,
        deadline: str | None = None,
        seconds: float | None = None,
    ) -> None:
        if deadline is None:
            message = "Request timed out."
        else:
            message = f"Request timed out: the {deadline} deadline of {seconds:g} s passed."
        super().__init__(message=message, request=request)
        self.deadline = deadline
        self.seconds = seconds


class StreamTruncatedError(APIConnectionError):
    """The body ended cleanly but the stream never said it was done (no ``[DONE]``)."""


class StreamGapError(APIConnectionError):
    """A Responses stream skipped sequence numbers: events were lost on the way."""

    expected: int
    received: int

    def __init__(self, *, request: httpx2.Request, expected: int, received: int) -> None:
        super().__init__(
            message=(
                f"Events are missing from the stream: expected sequence_number {expected}, "
                f"got {received}; what arrived is in .partial"
            ),
            request=request,
        )
        self.expected = expected
        self.received = received


class APIStreamError(APIError):
    """An error the server sent inside a stream (``event: error`` or an ``error`` object)."""


class APIResponseValidationError(APIError):
    response: httpx2.Response
    status_code: int

    def __init__(
        self, message: str, *, response: httpx2.Response, body: object | None = None
    ) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code = response.status_code


class StreamDecodeError(APIResponseValidationError):
    """An event could not be decoded: malformed JSON, wrong shape, or too large
    (``too_large``: then ``data`` is empty, as an oversized event is not kept)."""

    data: bytes
    too_large: bool

    def __init__(
        self, message: str, *, response: httpx2.Response, data: bytes, too_large: bool = False
    ) -> None:
        super().__init__(message, response=response)
        self.data = data
        self.too_large = too_large


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(response: httpx2.Response, body: object | None) -> APIStatusError:
    """The error for a 4xx/5xx response whose body has been read (and parsed if JSON)."""
    status = response.status_code
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    fields = _error_fields(body)
    detail = fields.get("message")
    if not isinstance(detail, str) or not detail:
        detail = body if isinstance(body, str) and body else response.reason_phrase
    return cls(f"Error code: {status} - {detail}", response=response, body=body)


def _error_fields(body: object | None) -> dict[str, Any]:
    """The fields of an OpenAI-shaped error body: ``{"error": {...}}`` or the object itself."""
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            return inner
        return body
    return {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
