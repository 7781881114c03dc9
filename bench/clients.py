"""The clients under test, each behind the same two-method face.

``stream(n, headers)`` is a context manager that sends one request for ``n`` chunks
(the extra ``headers`` tell the load server how to send them) and yields the
library's own iterable of chunks, so the benchmark loop iterates exactly what a user
would. deltastream and openai-python run with their defaults (openai-python pools at
most 1,000 connections; deltastream as many as the process may open, less 256);
httpx2 gets the pool limits and timeouts openai-python gives it.

The ``layer:*`` clients are not clients: they read the same body through one layer
of the stack only, to show where deltastream's time goes: httpx2 over httpcore2 (its
default transport, which deltastream used before it had its own), deltastream's own
transport, then the SSE decoder and the typed decoding on top of it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["CLIENTS", "AsyncBenchClient", "ClientSpec", "SyncBenchClient"]

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "Write a story about a robot."}]
HOST = "127.0.0.1"
Headers = dict[str, str] | None  # extra request headers: how the server is told what to do


class SyncBenchClient(Protocol):
    def stream(self, n: int, headers: Headers = None) -> AbstractContextManager[Iterable[Any]]: ...
    def close(self) -> None: ...


class AsyncBenchClient(Protocol):
    def stream(
        self, n: int, headers: Headers = None
    ) -> AbstractAsyncContextManager[AsyncIterable[Any]]: ...
    async def aclose(self) -> None: ...


def _body(n: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": MESSAGES,
        "stream": True,
        "max_tokens": n,
        "stream_options": {"include_usage": True},
    }


def _url(port: int) -> str:
    return f"http://{HOST}:{port}/v1"


def _httpx2_options() -> dict[str, Any]:
    """What openai-python gives its httpx2 client, so the comparison is like for like."""
    import httpx2

    return {
        "limits": httpx2.Limits(max_connections=1000, max_keepalive_connections=100),
        "timeout": httpx2.Timeout(600.0, connect=5.0),
    }


# -- deltastream ------------------------------------------------------------------------


class DeltastreamSync:
    def __init__(self, port: int) -> None:
        import deltastream

        self.client = deltastream.OpenAI(base_url=_url(port), api_key="x")

    @contextmanager
    def stream(self, n: int, headers: Headers = None) -> Iterator[Iterable[Any]]:
        stream = self.client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            max_tokens=n,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
        with stream:
            yield stream

    def close(self) -> None:
        self.client.close()


class DeltastreamAsync:
    def __init__(self, port: int, **options: Any) -> None:
        import deltastream

        self.client = deltastream.AsyncOpenAI(base_url=_url(port), api_key="x", **options)

    @asynccontextmanager
    async def stream(self, n: int, headers: Headers = None) -> AsyncIterator[AsyncIterable[Any]]:
        stream = await self.client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            max_tokens=n,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
        async with stream:
            yield stream

    async def aclose(self) -> None:
        await self.client.close()


def _deltastream_no_retries(port: int) -> DeltastreamAsync:
    """deltastream with ``max_retries=0``: a request that times out is not queued again."""
    return DeltastreamAsync(port, max_retries=0)


# -- openai-python ----------------------------------------------------------------------


class OpenAISync:
    def __init__(self, port: int) -> None:
        import openai

        self.client = openai.OpenAI(base_url=_url(port), api_key="x")

    @contextmanager
    def stream(self, n: int, headers: Headers = None) -> Iterator[Iterable[Any]]:
        create: Any = self.client.chat.completions.create  # its overloads want TypedDicts
        stream = create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            max_tokens=n,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
        with stream:
            yield stream

    def close(self) -> None:
        self.client.close()


class OpenAIAsync:
    def __init__(self, port: int) -> None:
        import openai

        self.client = openai.AsyncOpenAI(base_url=_url(port), api_key="x")

    @asynccontextmanager
    async def stream(self, n: int, headers: Headers = None) -> AsyncIterator[AsyncIterable[Any]]:
        create: Any = self.client.chat.completions.create
        stream = await create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            max_tokens=n,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
        async with stream:
            yield stream

    async def aclose(self) -> None:
        await self.client.close()


# -- httpx2's own SSE support -------------------------------------------------------------


def _json_events(source: Iterable[Any]) -> Iterator[Any]:
    for event in source:
        if event.data != "[DONE]":  # read on to the end so the connection is reused
            yield json.loads(event.data)


async def _ajson_events(source: AsyncIterable[Any]) -> AsyncIterator[Any]:
    async for event in source:
        if event.data != "[DONE]":
            yield json.loads(event.data)


class Httpx2Sync:
    def __init__(self, port: int) -> None:
        import httpx2

        self.http = httpx2.Client(**_httpx2_options())
        self.url = _url(port) + "/chat/completions"

    @contextmanager
    def stream(self, n: int, headers: Headers = None) -> Iterator[Iterable[Any]]:
        with self.http.sse(self.url, method="POST", json=_body(n), headers=headers) as src:
            yield _json_events(src)

    def close(self) -> None:
        self.http.close()


class Httpx2Async:
    def __init__(self, port: int) -> None:
        import httpx2

        self.http = httpx2.AsyncClient(**_httpx2_options())
        self.url = _url(port) + "/chat/completions"

    @asynccontextmanager
    async def stream(self, n: int, headers: Headers = None) -> AsyncIterator[AsyncIterable[Any]]:
        async with self.http.sse(self.url, method="POST", json=_body(n), headers=headers) as src:
            yield _ajson_events(src)

    async def aclose(self) -> None:
        await self.http.aclose()


# -- the raw floor ---------------------------------------------------------------------------


class FloorSync:
    def __init__(self, port: int) -> None:
        from .floor import FloorClient

        self.client = FloorClient(HOST, port)

    @contextmanager
    def stream(self, n: int, headers: Headers = None) -> Iterator[Iterable[Any]]:
        yield self.client.stream(n, headers)

    def close(self) -> None:
        self.client.close()


class FloorAsync:
    def __init__(self, port: int) -> None:
        from .floor import AsyncFloorClient

        self.client = AsyncFloorClient(HOST, port)

    @asynccontextmanager
    async def stream(self, n: int, headers: Headers = None) -> AsyncIterator[AsyncIterable[Any]]:
        yield self.client.stream(n, headers)

    async def aclose(self) -> None:
        await self.client.aclose()


# -- layers of deltastream's stack, for the "where the time goes" section ------------------


class _Layer:
    """Read the body through one transport and hand each piece to ``consume``."""

    def __init__(self, port: int, ours: bool, consume: Callable[[Any], list[Any]]) -> None:
        import httpx2

        from deltastream.transport import HTTP11Transport

        options = _httpx2_options()
        if ours:
            options["transport"] = HTTP11Transport(limits=options.pop("limits"))
        self.http = httpx2.Client(**options)
        self.url = _url(port) + "/chat/completions"
        self.ours = ours
        self.consume = consume

    @contextmanager
    def stream(self, n: int, headers: Headers = None) -> Iterator[Iterable[Any]]:
        with self.http.stream("POST", self.url, json=_body(n), headers=headers) as resp:
            yield self._pieces(resp)

    def _body(self, response: Any) -> Iterator[bytes]:
        from deltastream.engine._http import iter_body

        body: Iterator[bytes] = iter_body(response) if self.ours else response.iter_raw()
        return body

    def _pieces(self, response: Any) -> Iterator[Any]:
        consume = self.consume
        for data in self._body(response):
            yield from consume(data)

    def close(self) -> None:
        self.http.close()


def _nothing(data: bytes) -> list[Any]:
    return []


def _layer_httpcore(port: int) -> SyncBenchClient:
    return _Layer(port, False, _nothing)


def _layer_transport(port: int) -> SyncBenchClient:
    return _Layer(port, True, _nothing)


def _layer_sse(port: int) -> SyncBenchClient:
    from deltastream.sse import SSEDecoder

    return _Layer(port, True, SSEDecoder().feed)


def _layer_chunks(port: int) -> SyncBenchClient:
    """deltastream's ChunkStream (SSE + decode + checks) over its own transport."""
    import httpx2

    from deltastream.engine._protocol import ChunkStream

    class Layer(_Layer):
        def _pieces(self, response: httpx2.Response) -> Iterator[Any]:
            core = ChunkStream(response)
            for data in self._body(response):
                yield from core.feed(data)

    return Layer(port, True, _nothing)


@dataclass(frozen=True)
class ClientSpec:
    name: str  # as shown in the tables
    kind: str  # "sync" or "async"
    make: Callable[[int], Any]  # port -> SyncBenchClient | AsyncBenchClient
    chunk_id: Callable[[Any], str]
    counts: bool = True  # it yields one item per chunk (layers do not)


def _attr_id(chunk: Any) -> str:
    return str(chunk.id)


def _key_id(chunk: Any) -> str:
    return str(chunk["id"])


CLIENTS: dict[str, ClientSpec] = {
    spec.name: spec
    for spec in (
        ClientSpec("deltastream sync", "sync", DeltastreamSync, _attr_id),
        ClientSpec("deltastream async", "async", DeltastreamAsync, _attr_id),
        ClientSpec("deltastream async, max_retries=0", "async", _deltastream_no_retries, _attr_id),
        ClientSpec("openai-python sync", "sync", OpenAISync, _attr_id),
        ClientSpec("openai-python async", "async", OpenAIAsync, _attr_id),
        ClientSpec("httpx2 sse sync", "sync", Httpx2Sync, _key_id),
        ClientSpec("httpx2 sse async", "async", Httpx2Async, _key_id),
        ClientSpec("raw floor sync", "sync", FloorSync, _attr_id),
        ClientSpec("raw floor async", "async", FloorAsync, _attr_id),
        ClientSpec("layer: httpcore2 transport", "sync", _layer_httpcore, _attr_id, counts=False),
        ClientSpec("layer: own transport", "sync", _layer_transport, _attr_id, counts=False),
        ClientSpec("layer: + SSEDecoder", "sync", _layer_sse, _attr_id, counts=False),
        ClientSpec("layer: + ChunkStream", "sync", _layer_chunks, _attr_id),
    )
}
