"""``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``, ``AsyncAzureOpenAI``: openai's clients
with deltastream's engine under their streams, and :func:`accelerate` for a client
someone else built.

Everything that is not a stream is openai's own code. What the engine mixins change:

- streaming responses of the protocols the engine speaks (chat chunks, Responses
  events) are handed to the engine's stream classes, which are openai's stream classes
  too (``_process_response`` is where openai picks the stream class);
- the default HTTP client runs on deltastream's own HTTP/1.1 transport;
- the default timeout is deltastream's :class:`~deltastream.Timeout` (connect,
  first token, idle, total), an ``httpx2.Timeout`` that openai passes through;
- no API key is needed for a server other than OpenAI's (a local one, say): where
  openai would refuse to build the client, the drop-in sends no ``Authorization``.
"""

from __future__ import annotations

import inspect
import os
import socket
import time
from typing import Any, TypeVar

import httpx2
import openai

from ..engine._deadlines import DEFAULT_TIMEOUT
from ..engine._errors import APIError as EngineAPIError
from ..engine._http import aensure_event_stream, ensure_event_stream
from ..transport import AsyncHTTP11Transport, HTTP11Transport
from ._errors import translate
from ._streams import engine_stream_class

__all__ = ["AsyncAzureOpenAI", "AsyncOpenAI", "AzureOpenAI", "OpenAI", "accelerate"]

C = TypeVar("C", openai.OpenAI, openai.AsyncOpenAI)

_OPENAI_HOST = "api.openai.com"
_SENT_AT = "deltastream.sent_at"
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # openai's mark of a raw-response call
# Small request writes must not wait on Nagle's algorithm (about 40 ms on loopback).
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def _prepare(kwargs: dict[str, Any], cls: type[Any], http_client: Any) -> dict[str, Any]:
    """openai's constructor arguments with deltastream's defaults filled in."""
    if kwargs.get("timeout", openai.NOT_GIVEN) is openai.NOT_GIVEN:
        kwargs["timeout"] = DEFAULT_TIMEOUT
    if kwargs.get("http_client") is None:
        kwargs["http_client"] = http_client
    if _keyless(kwargs) and _accepts(cls, "_enforce_credentials"):
        kwargs.setdefault("_enforce_credentials", False)
    return kwargs


def _keyless(kwargs: dict[str, Any]) -> bool:
    """No key given or in the environment, for a server other than OpenAI's."""
    if kwargs.get("api_key") or os.environ.get("OPENAI_API_KEY"):
        return False
    if kwargs.get("admin_api_key") or os.environ.get("OPENAI_ADMIN_KEY"):
        return False
    base_url = kwargs.get("base_url") or os.environ.get("OPENAI_BASE_URL")
    return bool(base_url) and _OPENAI_HOST not in str(base_url)


def _accepts(cls: type[Any], name: str) -> bool:
    return name in inspect.signature(cls.__init__).parameters


def _engine_kwargs(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The engine's stream class in place of openai's, when the engine speaks its
    protocol; None to leave the call to openai."""
    if not kwargs.get("stream"):
        return None
    stream_cls = engine_stream_class(kwargs.get("stream_cls"))
    if stream_cls is None:
        return None
    response: httpx2.Response = kwargs["response"]
    response.extensions["sent_at"] = response.request.extensions.get(_SENT_AT, time.monotonic())
    response.extensions["retries"] = kwargs.get("retries_taken", 0)
    return {**kwargs, "stream_cls": stream_cls}


def _is_raw(response: httpx2.Response) -> bool:
    """A ``with_raw_response`` / ``with_streaming_response`` call: the caller reads the
    response as it likes, so its content type is not checked here."""
    return response.request.headers.get(_RAW_RESPONSE_HEADER) is not None


def _content_type_error(error: EngineAPIError) -> BaseException:
    return translate(error, None, 0)


class SyncEngine:
    """Streams of an ``openai.OpenAI`` (or subclass) on deltastream's engine."""

    def _prepare_request(self, request: httpx2.Request) -> None:
        super()._prepare_request(request)  # type: ignore[misc]
        request.extensions[_SENT_AT] = time.monotonic()

    def _process_response(self, **kwargs: Any) -> Any:
        engine = _engine_kwargs(kwargs)
        if engine is not None:
            response = engine["response"]
            if not _is_raw(response):
                try:
                    ensure_event_stream(response)
                except EngineAPIError as error:
                    raise _content_type_error(error) from None
            kwargs = engine
        return super()._process_response(**kwargs)  # type: ignore[misc]


class AsyncEngine:
    """Streams of an ``openai.AsyncOpenAI`` (or subclass) on deltastream's engine."""

    async def _prepare_request(self, request: httpx2.Request) -> None:
        await super()._prepare_request(request)  # type: ignore[misc]
        request.extensions[_SENT_AT] = time.monotonic()

    async def _process_response(self, **kwargs: Any) -> Any:
        engine = _engine_kwargs(kwargs)
        if engine is not None:
            response = engine["response"]
            if not _is_raw(response):
                try:
                    await aensure_event_stream(response)
                except EngineAPIError as error:
                    raise _content_type_error(error) from None
            kwargs = engine
        return await super()._process_response(**kwargs)  # type: ignore[misc]


def _http_client() -> httpx2.Client:
    return openai.DefaultHttpxClient(transport=HTTP11Transport(socket_options=_SOCKET_OPTIONS))


def _async_http_client() -> httpx2.AsyncClient:
    return openai.DefaultAsyncHttpxClient(
        transport=AsyncHTTP11Transport(socket_options=_SOCKET_OPTIONS)
    )


class OpenAI(SyncEngine, openai.OpenAI):
    """openai's ``OpenAI`` client; its streams run on deltastream's engine."""

    def __init__(self, **kwargs: Any) -> None:
        self._keyless = _keyless(kwargs)
        client = None if kwargs.get("http_client") else _http_client()
        super().__init__(**_prepare(kwargs, openai.OpenAI, client))

    def _validate_headers(self, headers: Any, custom_headers: Any) -> None:
        if not self._keyless:  # a keyless client sends no Authorization on purpose
            super()._validate_headers(headers, custom_headers)


class AsyncOpenAI(AsyncEngine, openai.AsyncOpenAI):
    """openai's ``AsyncOpenAI`` client; its streams run on deltastream's engine."""

    def __init__(self, **kwargs: Any) -> None:
        self._keyless = _keyless(kwargs)
        client = None if kwargs.get("http_client") else _async_http_client()
        super().__init__(**_prepare(kwargs, openai.AsyncOpenAI, client))

    def _validate_headers(self, headers: Any, custom_headers: Any) -> None:
        if not self._keyless:  # a keyless client sends no Authorization on purpose
            super()._validate_headers(headers, custom_headers)


class AzureOpenAI(SyncEngine, openai.AzureOpenAI):
    """openai's ``AzureOpenAI`` client; its streams run on deltastream's engine."""

    def __init__(self, **kwargs: Any) -> None:
        client = None if kwargs.get("http_client") else _http_client()
        super().__init__(**_prepare(kwargs, openai.AzureOpenAI, client))


class AsyncAzureOpenAI(AsyncEngine, openai.AsyncAzureOpenAI):
    """openai's ``AsyncAzureOpenAI`` client; its streams run on deltastream's engine."""

    def __init__(self, **kwargs: Any) -> None:
        client = None if kwargs.get("http_client") else _async_http_client()
        super().__init__(**_prepare(kwargs, openai.AsyncAzureOpenAI, client))


_accelerated: dict[type[Any], type[Any]] = {}


def accelerate(client: C) -> C:
    """Run the streams of ``client``, an ``openai.OpenAI`` / ``AsyncOpenAI`` (or any
    subclass) built elsewhere, on deltastream's engine; return the same client.

    The client keeps its class's behaviour and its HTTP client (and so its transport,
    proxies and pool): only its streams change. Its class becomes a subclass of its
    class with the engine's mixin, so ``isinstance`` checks still hold.
    """
    if isinstance(client, (SyncEngine, AsyncEngine)):
        return client
    if isinstance(client, openai.OpenAI):
        mixin: type[Any] = SyncEngine
    elif isinstance(client, openai.AsyncOpenAI):
        mixin = AsyncEngine
    else:
        raise TypeError(f"accelerate() takes an openai.OpenAI or AsyncOpenAI, not {client!r}")
    cls = type(client)
    accelerated = _accelerated.get(cls)
    if accelerated is None:
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        accelerated = _accelerated[cls] = type(cls.__name__, (mixin, cls), namespace)
    client.__class__ = accelerated
    return client
