"""The drop-in face: openai-python's clients with deltastream's engine under their
streams. Everything here is re-exported by ``deltastream`` itself."""

from ._client import (
    AsyncAzureOpenAI,
    AsyncEngine,
    AsyncOpenAI,
    AzureOpenAI,
    OpenAI,
    SyncEngine,
    accelerate,
)
from ._errors import (
    APIStreamError,
    DeadlineError,
    StreamConnectionError,
    StreamDecodeError,
    StreamError,
    StreamGapError,
    StreamTruncatedError,
)
from ._streams import AsyncStream, Stream

__all__ = [
    "APIStreamError",
    "AsyncAzureOpenAI",
    "AsyncEngine",
    "AsyncOpenAI",
    "AsyncStream",
    "AzureOpenAI",
    "DeadlineError",
    "OpenAI",
    "Stream",
    "StreamConnectionError",
    "StreamDecodeError",
    "StreamError",
    "StreamGapError",
    "StreamTruncatedError",
    "SyncEngine",
    "accelerate",
]
