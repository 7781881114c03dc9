"""The public surface is exactly what we mean to export, and matches the official SDK's names."""

from __future__ import annotations

import deltastream
import deltastream.engine._errors
import deltastream.engine.types
import deltastream.sse

EXPECTED_TOP_LEVEL = {
    "HTTP11Transport",
    "AsyncHTTP11Transport",
    "StreamGapError",
    "UsageEvent",
    "ToolCallArgumentsDoneEvent",
    "ToolCallArgumentsDeltaEvent",
    "ToolArgumentsError",
    "TeeBufferFull",
    "StreamMetrics",
    "StreamEvent",
    "RefusalDeltaEvent",
    "FinishEvent",
    "ContentDeltaEvent",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APIStreamError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncOpenAI",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "ChatAccumulator",
    "ResponseAccumulator",
    "Client",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "OpenAI",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "Stream",
    "StreamDecodeError",
    "StreamTruncatedError",
    "Timeout",
    "UnprocessableEntityError",
    "__version__",
    "types",
}


def test_top_level_names_are_exactly_the_intended_ones() -> None:
    assert set(deltastream.__all__) == EXPECTED_TOP_LEVEL
    for name in deltastream.__all__:
        assert hasattr(deltastream, name), name


def test_aliases_match_the_official_sdk() -> None:
    assert deltastream.OpenAI is deltastream.Client
    assert deltastream.AsyncOpenAI is deltastream.AsyncClient


def test_error_hierarchy_matches_the_official_sdk() -> None:
    d = deltastream
    assert issubclass(d.APIError, d.OpenAIError)
    assert issubclass(d.APIStatusError, d.APIError)
    assert issubclass(d.APIConnectionError, d.APIError)
    assert issubclass(d.APITimeoutError, d.APIConnectionError)
    assert issubclass(d.StreamTruncatedError, d.APIConnectionError)
    for cls in (
        d.BadRequestError,
        d.AuthenticationError,
        d.PermissionDeniedError,
        d.NotFoundError,
        d.ConflictError,
        d.UnprocessableEntityError,
        d.RateLimitError,
        d.InternalServerError,
    ):
        assert issubclass(cls, d.APIStatusError)


def test_submodules_export_what_they_define() -> None:
    assert set(deltastream.sse.__all__) == {
        "DEFAULT_MAX_EVENT_SIZE",
        "AsyncEventSource",
        "EventSource",
        "ReconnectInfo",
        "ReconnectsExhaustedError",
        "aconnect",
        "connect",
        "EventTooLargeError",
        "SSEDecoder",
        "ServerSentEvent",
    }
    for module in (deltastream.engine._errors, deltastream.engine.types, deltastream.sse):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
