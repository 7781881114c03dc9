"""The drop-in's errors: openai's classes, or subclasses of them for what only
deltastream reports, so ``except openai.APIError`` catches every one::

    openai.OpenAIError
     ├─ StreamError                      partial, events_received (every stream failure)
     └─ openai.APIError
         ├─ APIStreamError               the server reported an error inside the stream
         ├─ openai.APIConnectionError
         │   ├─ StreamConnectionError    the connection broke mid-stream
         │   ├─ StreamTruncatedError     the body ended before the stream said it was done
         │   ├─ StreamGapError           events are missing (a jump in sequence_number)
         │   └─ openai.APITimeoutError
         │       └─ DeadlineError        a deadline passed (``deadline`` names which)
         └─ openai.APIResponseValidationError
             └─ StreamDecodeError        a malformed or oversized event (``data``);
                                         also a json.JSONDecodeError, and a
                                         UnicodeDecodeError if it is not UTF-8

Each of these is also a :class:`StreamError`. The engine raises its own errors
(``deltastream.engine._errors``); :func:`translate` is the one place they become these.
An openai error met while a stream is read (a resumed request answered 404, say) keeps
its class and gets ``partial`` and ``events_received`` too.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

from ..engine import _errors as engine

# openai's messages, where the drop-in says what openai says
_STREAM_ERROR = "An error occurred during streaming"
_CONNECTION_ERROR = "Connection error."

__all__ = [
    "APIStreamError",
    "DeadlineError",
    "StreamConnectionError",
    "StreamDecodeError",
    "StreamError",
    "StreamGapError",
    "StreamTruncatedError",
    "translate",
]


class StreamError(openai.OpenAIError):
    """A stream failed after it started. ``partial`` is the result accumulated from the
    events handed over before it (openai's ``ChatCompletion`` or ``Response``, or None);
    ``events_received`` counts them."""

    partial: Any = None
    events_received: int = 0

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled and copied with what it holds: BaseException's own way calls the class
        # with ``args`` alone, which openai's errors (keyword arguments) refuse.
        return (_rebuilt, (type(self), self.args, self.__dict__))


class APIStreamError(openai.APIError, StreamError):
    """An error the server sent inside the stream. ``body`` is the error object."""


class StreamConnectionError(openai.APIConnectionError, StreamError):
    """The connection broke while the stream was being read."""


class StreamTruncatedError(openai.APIConnectionError, StreamError):
    """The body ended cleanly but the stream never said it was done (no ``[DONE]``)."""


class StreamGapError(openai.APIConnectionError, StreamError):
    """A Responses stream skipped sequence numbers: events were lost on the way."""

    expected: int
    received: int

    def __init__(self, *, message: str, request: httpx2.Request, expected: int, received: int):
        super().__init__(message=message, request=request)
        self.expected = expected
        self.received = received


class DeadlineError(openai.APITimeoutError, StreamError):
    """A deadline passed: ``deadline`` is ``connect``, ``first_token``, ``idle``,
    ``total`` or ``pool``, ``seconds`` its length."""

    deadline: str | None
    seconds: float | None

    def __init__(
        self, request: httpx2.Request, *, message: str, deadline: str | None, seconds: float | None
    ) -> None:
        super().__init__(request)
        self.message = message
        self.args = (message,)
        self.deadline = deadline
        self.seconds = seconds


class _JSONDecodeError(json.JSONDecodeError):
    """``json.JSONDecodeError`` made to end a chain of cooperative ``__init__`` calls
    (openai's errors call ``super().__init__(message)``); the fields are set after."""

    def __init__(self, *args: object) -> None:
        ValueError.__init__(self, *args)


class StreamDecodeError(openai.APIResponseValidationError, StreamError, _JSONDecodeError):
    """An event could not be decoded: malformed JSON, or too large. ``data`` holds what
    came.

    It is also a ``json.JSONDecodeError`` (and so a ``ValueError``), what openai raises
    for an event that is not JSON, so ``except json.JSONDecodeError`` still catches it.
    """

    data: bytes

    def __init__(
        self, response: httpx2.Response, *, message: str, data: bytes, too_large: bool = False
    ) -> None:
        super().__init__(response, None, message=message)
        self.data = data
        self.doc = data.decode("utf-8", "replace")
        self.msg, self.pos, self.lineno, self.colno = _where(data, message, too_large)


class _InvalidUTF8Error(StreamDecodeError, UnicodeDecodeError):
    """An event whose data is not UTF-8: openai's decoder raises ``UnicodeDecodeError``
    there, so this is one too (its encoding, object, start, end and reason are those of
    the event's data), and a :class:`StreamDecodeError` like any other."""

    __str__ = StreamDecodeError.__str__  # the message, not UnicodeDecodeError's words

    def __init__(
        self, response: httpx2.Response, *, message: str, data: bytes, invalid: UnicodeDecodeError
    ) -> None:
        super().__init__(response, message=message, data=data)
        UnicodeDecodeError.__init__(
            self, invalid.encoding, invalid.object, invalid.start, invalid.end, invalid.reason
        )
        self.args = (message,)

    def __reduce__(self) -> tuple[Any, ...]:
        where = (self.encoding, self.object, self.start, self.end, self.reason)
        return (_rebuilt, (type(self), self.args, self.__dict__, where))


def _rebuilt(
    cls: type[BaseException],
    args: tuple[Any, ...],
    state: dict[str, Any],
    invalid: tuple[str, bytes, int, int, str] | None = None,
) -> BaseException:
    error = cls.__new__(cls)
    if invalid is not None:  # UnicodeDecodeError's own fields, not in __dict__
        UnicodeDecodeError.__init__(error, *invalid)  # type: ignore[arg-type]
    error.__dict__.update(state)
    error.args = args
    return error


def _decode_error(error: engine.StreamDecodeError) -> StreamDecodeError:
    data = error.data
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as invalid:
        return _InvalidUTF8Error(error.response, message=error.message, data=data, invalid=invalid)
    return StreamDecodeError(
        error.response, message=error.message, data=data, too_large=error.too_large
    )


def _where(data: bytes, message: str, too_large: bool) -> tuple[str, int, int, int]:
    """``json.JSONDecodeError``'s fields (msg, pos, lineno, colno) for ``data``, as
    ``json.loads`` finds them; the message and the start when it finds nothing wrong,
    or there is nothing to read (an oversized event is not kept)."""
    if too_large:
        return message, 0, 1, 1
    try:
        json.loads(data)
    except json.JSONDecodeError as exc:
        return exc.msg, exc.pos, exc.lineno, exc.colno
    except (ValueError, RecursionError):  # not UTF-8, or nested past Python's limit
        pass
    return message, 0, 1, 1


def translate(error: BaseException, partial: Any, events_received: int) -> BaseException:
    """The drop-in's error for one of the engine's, carrying ``partial`` and
    ``events_received``. Anything else is returned as it is, with them attached if it
    is an API error."""
    result = _translated(error)
    if isinstance(result, (StreamError, openai.APIError)):
        result.partial = partial  # type: ignore[union-attr]
        result.events_received = events_received  # type: ignore[union-attr]
    if result is not error:
        result.__cause__ = error.__cause__
    return result


def _translated(error: BaseException) -> BaseException:
    if not isinstance(error, engine.APIError):
        return error
    message, request = error.message, error.request
    if isinstance(error, engine.APIStreamError):
        return _stream_error(error)
    if isinstance(error, engine.StreamDecodeError):
        return _decode_error(error)
    if isinstance(error, engine.StreamGapError):
        return StreamGapError(
            message=message, request=request, expected=error.expected, received=error.received
        )
    if isinstance(error, engine.StreamTruncatedError):
        return StreamTruncatedError(message=message, request=request)
    if isinstance(error, engine.APITimeoutError):
        return DeadlineError(
            request, message=message, deadline=error.deadline, seconds=error.seconds
        )
    if isinstance(error, engine.APIConnectionError):
        # openai's words; what broke is the transport's error, the cause
        return StreamConnectionError(message=_CONNECTION_ERROR, request=request)
    if isinstance(error, engine.APIResponseValidationError):
        return openai.APIResponseValidationError(error.response, error.body, message=message)
    return error


def _stream_error(error: engine.APIStreamError) -> APIStreamError:
    """The error report as openai reads one: ``body`` is the ``error`` value itself and
    the message its ``message``, or openai's words when it has none."""
    body = error.body
    if not (isinstance(body, dict) and "error" in body):  # an ``event: error`` of its own
        return APIStreamError(error.message, error.request, body=body)
    inner = body["error"]
    message = inner.get("message") if isinstance(inner, dict) else None
    if not isinstance(message, str) or not message:
        message = _STREAM_ERROR
    return APIStreamError(message, error.request, body=inner)
