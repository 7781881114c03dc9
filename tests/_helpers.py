"""Shared test helpers: render SSE bodies and run one test body against both clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2

import deltastream

Handler = Callable[[httpx2.Request], httpx2.Response]
MODES = ["sync", "async"]


def chunk_json(
    content: str | None = None, *, index: int = 0, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def sse_body(*payloads: object, done: bool = True) -> bytes:
    parts = [f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads]
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


def split_every(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class Pieces(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A body delivered in pieces of a chosen size, to either client."""

    def __init__(self, body: bytes, size: int) -> None:
        self.body = body
        self.size = size

    def __iter__(self) -> Iterator[bytes]:
        return split_every(self.body, self.size)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in split_every(self.body, self.size):
            yield piece


def event_stream(body: bytes, *, piece: int = 0) -> httpx2.Response:
    """A 200 event-stream response; ``piece`` > 0 delivers the body in pieces of that size."""
    headers = {"content-type": "text/event-stream"}
    if piece:
        return httpx2.Response(200, headers=headers, stream=Pieces(body, piece))
    return httpx2.Response(200, headers=headers, content=body)


def sync_client(handler: Handler, **kwargs: Any) -> deltastream.Client:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("base_url", "http://testserver/v1")
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return deltastream.Client(http_client=http, **kwargs)


def async_client(handler: Handler, **kwargs: Any) -> deltastream.AsyncClient:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("base_url", "http://testserver/v1")
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return deltastream.AsyncClient(http_client=http, **kwargs)


async def stream_chunks(
    mode: str, handler: Handler, **create: Any
) -> list[deltastream.engine.types.ChatCompletionChunk]:
    """Create a chat stream with either client and read it to the end."""
    create.setdefault("model", "m")
    create.setdefault("messages", [{"role": "user", "content": "hi"}])
    if mode == "sync":
        client = sync_client(handler)
        with client.chat.completions.create(stream=True, **create) as stream:
            return list(stream)
    aclient = async_client(handler)
    async with await aclient.chat.completions.create(stream=True, **create) as astream:
        return [chunk async for chunk in astream]
