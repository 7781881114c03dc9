"""``Client`` / ``AsyncClient`` (aliases ``OpenAI`` / ``AsyncOpenAI``): configuration,
environment variables and the HTTP connection pool."""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx2

from .._version import __version__
from ..engine._deadlines import Timeout
from ..engine._errors import OpenAIError
from ..engine._http import RequestOptions
from ..transport import async_http_client, sync_http_client
from ._resources.chat import AsyncChat, Chat
from ._resources.responses import AsyncResponses, Responses

__all__ = ["DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT", "AsyncClient", "Client"]

OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MAX_RETRIES = 2
DEFAULT_TIMEOUT = Timeout()
# Small request writes must not wait on Nagle's algorithm (about 40 ms on loopback).
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class _ClientConfig:
    """What both clients share: settings resolved from arguments and the environment."""

    _owns_http: bool

    api_key: str | None
    base_url: str
    timeout: Timeout
    max_retries: int
    default_headers: dict[str, str]

    def _configure(
        self,
        api_key: str | None,
        base_url: str | None,
        timeout: float | Timeout | httpx2.Timeout | None,
        max_retries: int,
        default_headers: Mapping[str, str] | None,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY") or None
        if base_url is None:
            base_url = os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL
        if api_key is None and base_url.rstrip("/") == OPENAI_BASE_URL:
            raise OpenAIError(
                "The api_key client option must be set either by passing api_key to the "
                "client or by setting the OPENAI_API_KEY environment variable (or point "
                "OPENAI_BASE_URL at a server that needs no key, such as `deltastream serve`)"
            )
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = Timeout.of(timeout)
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})

    def _headers(self, extra: Mapping[str, str] | None, *, stream: bool) -> dict[str, str]:
        headers = {
            "Accept": "text/event-stream" if stream else "application/json",
            "User-Agent": f"deltastream/{__version__}",
        }
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(self.default_headers)
        if extra:
            headers.update(extra)
        return headers

    def _options(
        self,
        path: str,
        body: dict[str, Any],
        *,
        stream: bool,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, Any] | None = None,
        timeout: float | Timeout | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        require_done: bool = True,
    ) -> RequestOptions:
        return RequestOptions(
            method="POST",
            url=f"{self.base_url}{path}",
            headers=self._headers(extra_headers, stream=stream),
            body=body,
            params=dict(extra_query) if extra_query else None,
            timeout=self.timeout if timeout is None else Timeout.of(timeout),
            max_retries=self.max_retries if max_retries is None else max_retries,
            stream=stream,
            require_done=require_done,
        )

    def _copy_with(
        self,
        timeout: float | Timeout | httpx2.Timeout | None,
        max_retries: int | None,
        default_headers: Mapping[str, str] | None,
    ) -> Any:
        clone = copy.copy(self)
        if timeout is not None:
            clone.timeout = Timeout.of(timeout)
        if max_retries is not None:
            clone.max_retries = max_retries
        if default_headers is not None:
            clone.default_headers = {**self.default_headers, **default_headers}
        clone._owns_http = False  # the connection pool stays the original's
        return clone

    def __repr__(self) -> str:
        # Never show the key itself.
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Client(_ClientConfig):
    """A synchronous client for an OpenAI-compatible API."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | httpx2.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self._configure(api_key, base_url, timeout, max_retries, default_headers)
        self._owns_http = http_client is None
        self._http = http_client or sync_http_client(
            timeout=self.timeout.transport(), socket_options=_SOCKET_OPTIONS, follow_redirects=True
        )
        self.chat = Chat(self)
        self.responses = Responses(self)

    def with_options(
        self,
        *,
        timeout: float | Timeout | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> Client:
        """A client with these settings changed, sharing this one's connection pool."""
        clone: Client = self._copy_with(timeout, max_retries, default_headers)
        clone.chat = Chat(clone)
        clone.responses = Responses(clone)
        return clone

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_ClientConfig):
    """An asyncio client for an OpenAI-compatible API."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | httpx2.Timeout | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._configure(api_key, base_url, timeout, max_retries, default_headers)
        self._owns_http = http_client is None
        self._http = http_client or async_http_client(
            timeout=self.timeout.transport(), socket_options=_SOCKET_OPTIONS, follow_redirects=True
        )
        self.chat = AsyncChat(self)
        self.responses = AsyncResponses(self)

    def with_options(
        self,
        *,
        timeout: float | Timeout | httpx2.Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> AsyncClient:
        """A client with these settings changed, sharing this one's connection pool."""
        clone: AsyncClient = self._copy_with(timeout, max_retries, default_headers)
        clone.chat = AsyncChat(clone)
        clone.responses = AsyncResponses(clone)
        return clone

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
