"""Server-Sent Events: the sans-I/O decoder (:class:`SSEDecoder`, bytes in, events out)
and an event-source client that reconnects (:func:`connect`, :func:`aconnect`)."""

from ._eventsource import (
    AsyncEventSource,
    EventSource,
    ReconnectInfo,
    ReconnectsExhaustedError,
    aconnect,
    connect,
)
from .engine._sse import DEFAULT_MAX_EVENT_SIZE, EventTooLargeError, ServerSentEvent, SSEDecoder

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "AsyncEventSource",
    "EventSource",
    "EventTooLargeError",
    "ReconnectInfo",
    "ReconnectsExhaustedError",
    "SSEDecoder",
    "ServerSentEvent",
    "aconnect",
    "connect",
]
