"""The native face: ``Client`` / ``AsyncClient`` with msgspec types and no pydantic, the
least CPU per chunk. Its errors mirror the official SDK's names and meaning."""

from ..engine import types
from ..engine._accumulate import ChatAccumulator, ResponseAccumulator
from ..engine._deadlines import Timeout
from ..engine._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APIStreamError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
    StreamDecodeError,
    StreamGapError,
    StreamTruncatedError,
    UnprocessableEntityError,
)
from ..engine._events import (
    ContentDeltaEvent,
    FinishEvent,
    RefusalDeltaEvent,
    StreamEvent,
    ToolArgumentsError,
    ToolCallArgumentsDeltaEvent,
    ToolCallArgumentsDoneEvent,
    UsageEvent,
)
from ..engine._metrics import StreamMetrics
from ..engine._tee import TeeBufferFull
from ._client import AsyncClient, Client
from ._streams import AsyncStream, Stream

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "ChatAccumulator",
    "Client",
    "ConflictError",
    "ContentDeltaEvent",
    "FinishEvent",
    "InternalServerError",
    "NotFoundError",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "RefusalDeltaEvent",
    "ResponseAccumulator",
    "Stream",
    "StreamDecodeError",
    "StreamEvent",
    "StreamGapError",
    "StreamMetrics",
    "StreamTruncatedError",
    "TeeBufferFull",
    "Timeout",
    "ToolArgumentsError",
    "ToolCallArgumentsDeltaEvent",
    "ToolCallArgumentsDoneEvent",
    "UnprocessableEntityError",
    "UsageEvent",
    "types",
]
