"""deltastream: fast, loss-free streaming from OpenAI-compatible LLM APIs.

``from deltastream import OpenAI`` (or ``import deltastream as openai``) is a drop-in
for the official client's streaming surface.
"""

from . import types
from ._deadlines import Timeout
from ._events import (
    ContentDeltaEvent,
    FinishEvent,
    RefusalDeltaEvent,
    StreamEvent,
    ToolArgumentsError,
    ToolCallArgumentsDeltaEvent,
    ToolCallArgumentsDoneEvent,
    UsageEvent,
)
from ._metrics import StreamMetrics
from ._tee import TeeBufferFull
from ._version import __version__
from .accumulate import ChatAccumulator, ResponseAccumulator
from .client import AsyncClient, Client
from .errors import (
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
from .streaming import AsyncStream, Stream
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
