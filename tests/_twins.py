"""One test body for both transports: a blocking face over httpx2.Client on
``HTTP11Transport`` and over httpx2.AsyncClient on ``AsyncHTTP11Transport`` (run on
asyncio's loop or uvloop, one loop per twin so its connection pool lives on)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar

import httpx2

from deltastream.transport import (
    AsyncHTTP11Transport,
    HTTP11Transport,
    async_http_client,
    sync_http_client,
)

__all__ = ["KINDS", "Twin"]

KINDS = ["sync", "asyncio", "uvloop"]
T = TypeVar("T")


def _loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


class Twin:
    """``kind``: "sync", "asyncio" or "uvloop". ``mode``: the client on a bare
    transport ("bare"), from ``sync_http_client`` / ``async_http_client`` ("factory":
    proxies from the environment and ``proxy=``), or httpx2's own with its default
    transport ("httpx2", for comparison). ``options`` go to whichever is made."""

    def __init__(self, kind: str, mode: str = "bare", **options: Any) -> None:
        self.kind = kind
        self._runner: asyncio.Runner | None = None
        self._sync: httpx2.Client | None = None
        self._async: httpx2.AsyncClient | None = None
        if mode == "bare":
            names = ("limits", "socket_options", "verify")
            transport = {name: options.pop(name) for name in names if name in options}
        if kind == "sync":
            if mode == "factory":
                self._sync = sync_http_client(**options)
            elif mode == "httpx2":
                self._sync = httpx2.Client(**options)
            else:
                self._sync = httpx2.Client(transport=HTTP11Transport(**transport), **options)
            return
        self._runner = asyncio.Runner(loop_factory=_loop_factory(kind))
        if mode == "factory":
            self._async = async_http_client(**options)
        elif mode == "httpx2":
            self._async = httpx2.AsyncClient(**options)
        else:
            atransport = AsyncHTTP11Transport(**transport)
            self._async = httpx2.AsyncClient(transport=atransport, **options)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._runner is not None
        return self._runner.run(coroutine)

    def send(self, request: httpx2.Request) -> httpx2.Response:
        """Send and read the whole body."""
        if self._sync is not None:
            return self._sync.send(request)
        assert self._async is not None
        return self.run(self._async.send(request))

    def request(self, method: str, url: str, **options: Any) -> httpx2.Response:
        return self.send(self.build(method, url, **options))

    def build(self, method: str, url: str, **options: Any) -> httpx2.Request:
        client = self._sync if self._sync is not None else self._async
        assert client is not None
        return client.build_request(method, url, **options)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
        if self._async is not None:
            self.run(self._async.aclose())
        if self._runner is not None:
            self._runner.close()

    def __enter__(self) -> Twin:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
