"""The clients under test, each behind the same two-method face.

``stream(n, headers)`` is a context manager that sends one request for ``n`` chunks
(the extra ``headers`` tell the load server how to send them) and yields the
library's own iterable of chunks, so the benchmark loop iterates exactly what a user
would. deltastream has two faces over one engine, measured apart: the native client
(``deltastream.Client``/``AsyncClient``, msgspec types) and the drop-in
(``deltastream.OpenAI``/``AsyncOpenAI``, openai-python's clients whose streams run on
deltastream's engine and hand out openai's pydantic types). Every client runs with
its defaults (openai-python pools at most 1,000 connections; both faces of
deltastream, on deltastream's transport, as many as the process may open, less 256);
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

__all__ = [
    "CLIENTS",
    "DROPIN_ASYNC",
    "DROPIN_SYNC",
    "FLOOR_ASYNC",
    "FLOOR_SYNC",
    "HTTPX2_ASYNC",
    "HTTPX2_SYNC",
    "NATIVE_ASYNC",
    "NATIVE_NO_RETRIES",
    "NATIVE_SYNC",
    "OPENAI_ASYNC",
    "OPENAI_SYNC",
    "AsyncBenchClient",
    "ClientSpec",
    "SyncBenchClient",
]

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


# -- deltastream (native and drop-in) and openai-python: one chat.completions face ----------


class ChatSync:
    """Any client with openai's ``chat.completions.create(stream=True)``: deltastream's
    native ``Client``, its drop-in ``OpenAI`` and openai-python's ``OpenAI`` all take
    the same arguments here."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @contextmanager
    def stream(self, n: int, headers: Headers = None) -> Iterator[Iterable[Any]]:
        create: Any = self.client.chat.completions.create  # openai's overloads want TypedDicts
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


class ChatAsync:
    """The asyncio twin of :class:`ChatSync`."""

    def __init__(self, client: Any) -> None:
        self.client = client

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


# Each factory imports only its own library, so a fresh worker's peak RSS is that
# client's alone (the native client never imports openai or pydantic).


def _native_sync(port: int) -> ChatSync:
    import deltastream

    return ChatSync(deltastream.Client(base_url=_url(port), api_key="x"))


def _native_async(port: int) -> ChatAsync:
    import deltastream

    return ChatAsync(deltastream.AsyncClient(base_url=_url(port), api_key="x"))


def _native_no_retries(port: int) -> ChatAsync:
    """``max_retries=0``: a request that times out is not queued again."""
    import deltastream

    return ChatAsync(deltastream.AsyncClient(base_url=_url(port), api_key="x", max_retries=0))


def _dropin_sync(port: int) -> ChatSync:
    import deltastream

    return ChatSync(deltastream.OpenAI(base_url=_url(port), api_key="x"))


def _dropin_async(port: int) -> ChatAsync:
    import deltastream

    return ChatAsync(deltastream.AsyncOpenAI(base_url=_url(port), api_key="x"))


def _openai_sync(port: int) -> ChatSync:
    import openai

    return ChatSync(openai.OpenAI(base_url=_url(port), api_key="x"))


def _openai_async(port: int) -> ChatAsync:
    import openai

    return ChatAsync(openai.AsyncOpenAI(base_url=_url(port), api_key="x"))


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
    """SSE decoding as a chat stream does it: plain events' data at once, else events."""
    from deltastream.sse import SSEDecoder

    decoder = SSEDecoder()

    def consume(data: bytes) -> list[Any]:
        payloads = decoder.feed_plain(data)
        return decoder.feed(data) if payloads is None else payloads

    return _Layer(port, True, consume)


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


# The names the plan, the tables and the findings use.
NATIVE_SYNC, NATIVE_ASYNC = "deltastream native sync", "deltastream native async"
NATIVE_NO_RETRIES = "deltastream native async, max_retries=0"
DROPIN_SYNC, DROPIN_ASYNC = "deltastream drop-in sync", "deltastream drop-in async"
OPENAI_SYNC, OPENAI_ASYNC = "openai-python sync", "openai-python async"
HTTPX2_SYNC, HTTPX2_ASYNC = "httpx2 sse sync", "httpx2 sse async"
FLOOR_SYNC, FLOOR_ASYNC = "raw floor sync", "raw floor async"

CLIENTS: dict[str, ClientSpec] = {
    spec.name: spec
    for spec in (
        ClientSpec(NATIVE_SYNC, "sync", _native_sync, _attr_id),
        ClientSpec(NATIVE_ASYNC, "async", _native_async, _attr_id),
        ClientSpec(NATIVE_NO_RETRIES, "async", _native_no_retries, _attr_id),
        ClientSpec(DROPIN_SYNC, "sync", _dropin_sync, _attr_id),
        ClientSpec(DROPIN_ASYNC, "async", _dropin_async, _attr_id),
        ClientSpec(OPENAI_SYNC, "sync", _openai_sync, _attr_id),
        ClientSpec(OPENAI_ASYNC, "async", _openai_async, _attr_id),
        ClientSpec(HTTPX2_SYNC, "sync", Httpx2Sync, _key_id),
        ClientSpec(HTTPX2_ASYNC, "async", Httpx2Async, _key_id),
        ClientSpec(FLOOR_SYNC, "sync", FloorSync, _attr_id),
        ClientSpec(FLOOR_ASYNC, "async", FloorAsync, _attr_id),
        ClientSpec("layer: httpcore2 transport", "sync", _layer_httpcore, _attr_id, counts=False),
        ClientSpec("layer: own transport", "sync", _layer_transport, _attr_id, counts=False),
        ClientSpec("layer: + SSEDecoder", "sync", _layer_sse, _attr_id, counts=False),
        ClientSpec("layer: + ChunkStream", "sync", _layer_chunks, _attr_id),
    )
}
