"""deltastream: fast, loss-free streaming from OpenAI-compatible LLM APIs.

``from deltastream import OpenAI`` (or ``import deltastream as openai``) is a drop-in
for the official client's streaming surface.
"""

from ._version import __version__
from .engine import types
from .engine._accumulate import ChatAccumulator, ResponseAccumulator
from .engine._deadlines import Timeout
from .engine._errors import (
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
from .engine._events import (
    ContentDeltaEvent,
    FinishEvent,
    RefusalDeltaEvent,
    StreamEvent,
    ToolArgumentsError,
    ToolCallArgumentsDeltaEvent,
    ToolCallArgumentsDoneEvent,
    UsageEvent,
)
from .engine._metrics import StreamMetrics
from .engine._streams import AsyncStream, Stream
from .engine._tee import TeeBufferFull
from .native._client import AsyncClient, Client
from .transport import AsyncHTTP11Transport, HTTP11Transport

OpenAI = Client
AsyncOpenAI = AsyncClient

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncHTTP11Transport",
    "AsyncOpenAI",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "ChatAccumulator",
    "ResponseAccumulator",
    "Client",
    "ConflictError",
    "ContentDeltaEvent",
    "HTTP11Transport",
    "FinishEvent",
    "InternalServerError",
    "NotFoundError",
    "OpenAI",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "RefusalDeltaEvent",
    "Stream",
    "StreamDecodeError",
    "StreamGapError",
    "StreamEvent",
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
    "__version__",
]
