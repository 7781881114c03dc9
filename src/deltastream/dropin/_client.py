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
from functools import cached_property
from typing import Any, TypeVar

import httpx2
import openai
from openai._base_client import AsyncHttpxClientWrapper, SyncHttpxClientWrapper
from openai.resources.chat import AsyncChat, Chat
from openai.resources.responses import AsyncResponses, Responses

from ..engine._deadlines import DEFAULT_TIMEOUT
from ..engine._errors import APIError as EngineAPIError
from ..engine._http import ATTEMPT_EXTENSION, aensure_event_stream, ensure_event_stream
from ..engine._pacing import start_turn
from ..transport import async_http_client, sync_http_client
from ._errors import translate
from ._helpers import AsyncChatResource, AsyncResponsesResource, ChatResource, ResponsesResource
from ._streams import engine_stream_class

__all__ = ["AsyncAzureOpenAI", "AsyncOpenAI", "AzureOpenAI", "OpenAI", "accelerate"]

C = TypeVar("C", openai.OpenAI, openai.AsyncOpenAI)

_OPENAI_HOST = "api.openai.com"
_HTTPX_DEFAULT_SECONDS = 5.0  # httpx's (and httpx2's) default timeout, every phase
_SENT_AT = "deltastream.sent_at"
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # openai's mark of a raw-response call
# Small request writes must not wait on Nagle's algorithm (about 40 ms on loopback).
_SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def _prepare(kwargs: dict[str, Any], cls: type[Any], http_client: Any) -> dict[str, Any]:
    """openai's constructor arguments with deltastream's defaults filled in."""
    given = kwargs.get("http_client")
    # As in openai, a given HTTP client's own timeout counts unless it is httpx's
    # default; in place of openai's default, deltastream's deadlines.
    no_timeout = isinstance(kwargs.get("timeout", openai.NOT_GIVEN), openai.NotGiven)
    if no_timeout and not _own_timeout(given):
        kwargs["timeout"] = DEFAULT_TIMEOUT
    if given is None:
        kwargs["http_client"] = http_client
    # Azure always authenticates (a key or an Azure AD token): the rule for local
    # servers is not for it, and openai's own check says what is missing at once.
    azure = issubclass(cls, (openai.AzureOpenAI, openai.AsyncAzureOpenAI))
    if not azure and _keyless(kwargs) and _accepts(cls, "_enforce_credentials"):
        # (openai's copy() passes True unless told otherwise: a copy is keyless too.)
        kwargs["_enforce_credentials"] = False
    return kwargs


def _own_timeout(http_client: Any) -> bool:
    """Whether ``http_client`` has a timeout other than httpx's default (5 s for every
    phase), which openai takes as the client's."""
    timeout = getattr(http_client, "timeout", None)
    if timeout is None:
        return False
    phases = (timeout.connect, timeout.read, timeout.write, timeout.pool)
    return phases != (_HTTPX_DEFAULT_SECONDS,) * 4


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


def _stamp(request: httpx2.Request) -> None:
    """When the request was sent: where its stream's deadlines count from."""
    request.extensions[_SENT_AT] = time.monotonic()


def _engine_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], httpx2.Response | None]:
    """``_process_response``'s arguments with the engine's stream class in place of
    openai's when the engine speaks its protocol, and the response whose content type
    must be checked (None when the call is left to openai as it is)."""
    if not kwargs.get("stream"):
        return kwargs, None
    stream_cls = engine_stream_class(kwargs.get("stream_cls"))
    if stream_cls is None:
        return kwargs, None
    response: httpx2.Response = kwargs["response"]
    # openai's retry loop does not say when its first attempt started: from this one.
    sent_at = response.request.extensions.get(_SENT_AT, time.monotonic())
    response.extensions[ATTEMPT_EXTENSION] = (sent_at, sent_at, kwargs.get("retries_taken", 0))
    # A with_raw_response / with_streaming_response call reads the body as it likes.
    raw = response.request.headers.get(_RAW_RESPONSE_HEADER) is not None
    return {**kwargs, "stream_cls": stream_cls}, None if raw else response


def _sync_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs, check = _engine_kwargs(kwargs)
    if check is not None:
        try:
            ensure_event_stream(check)
        except EngineAPIError as error:
            raise translate(error, None, 0) from None
    return kwargs


async def _async_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs, check = _engine_kwargs(kwargs)
    if check is not None:
        try:
            await aensure_event_stream(check)
        except EngineAPIError as error:
            raise translate(error, None, 0) from None
    return kwargs


class SyncEngine:
    """Streams of an ``openai.OpenAI`` (or subclass) on deltastream's engine."""

    __slots__ = ()
    _deltastream_engine = True

    @cached_property
    def chat(self) -> Chat:
        return ChatResource(self)  # type: ignore[arg-type]

    @cached_property
    def responses(self) -> Responses:
        return ResponsesResource(self)  # type: ignore[arg-type]

    def _prepare_request(self, request: httpx2.Request) -> None:
        super()._prepare_request(request)  # type: ignore[misc]
        _stamp(request)

    def _process_response(self, **kwargs: Any) -> Any:
        return super()._process_response(**_sync_kwargs(kwargs))  # type: ignore[misc]


class AsyncEngine:
    """Streams of an ``openai.AsyncOpenAI`` (or subclass) on deltastream's engine."""

    __slots__ = ()
    _deltastream_engine = True

    @cached_property
    def chat(self) -> AsyncChat:
        return AsyncChatResource(self)  # type: ignore[arg-type]

    @cached_property
    def responses(self) -> AsyncResponses:
        return AsyncResponsesResource(self)  # type: ignore[arg-type]

    async def _prepare_options(self, options: Any) -> Any:
        await start_turn()  # before openai builds the request (see engine/_pacing.py)
        return await super()._prepare_options(options)  # type: ignore[misc]

    async def _prepare_request(self, request: httpx2.Request) -> None:
        await super()._prepare_request(request)  # type: ignore[misc]
        _stamp(request)

    async def _process_response(self, **kwargs: Any) -> Any:
        return await super()._process_response(**await _async_kwargs(kwargs))  # type: ignore[misc]


# openai's own default HTTP clients (its defaults, closed when collected), on our
# transport, with proxies where httpx2 would use them.
def _http_client() -> httpx2.Client:
    return sync_http_client(client_class=SyncHttpxClientWrapper, socket_options=_SOCKET_OPTIONS)


def _async_http_client() -> httpx2.AsyncClient:
    return async_http_client(client_class=AsyncHttpxClientWrapper, socket_options=_SOCKET_OPTIONS)


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


def _take_openais_signatures() -> None:
    """openai's parameters for the clients, not ``**kwargs``: frameworks pass a client
    what its signature names. On ``__init__``, not the class: a subclass keeps its own."""
    pairs = (
        (OpenAI, openai.OpenAI),
        (AsyncOpenAI, openai.AsyncOpenAI),
        (AzureOpenAI, openai.AzureOpenAI),
        (AsyncAzureOpenAI, openai.AsyncAzureOpenAI),
    )
    for ours, theirs in pairs:
        init: Any = ours.__init__
        init.__signature__ = inspect.signature(theirs.__init__)


_take_openais_signatures()

_accelerated: dict[type[Any], type[Any]] = {}


def accelerate(client: C) -> C:
    """Run the streams of ``client``, an ``openai.OpenAI`` / ``AsyncOpenAI`` (or any
    subclass) built elsewhere, on deltastream's engine; return the same client.

    The client keeps its class's behaviour and its HTTP client (and so its transport,
    proxies and pool): only its streams change. Its class becomes a subclass of its
    class, so ``isinstance`` checks still hold and ``copy()`` / ``with_options()``
    give accelerated clients too.
    """
    cls = type(client)
    if getattr(cls, "_deltastream_engine", False):
        return client
    if not isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        raise TypeError(f"accelerate() takes an openai.OpenAI or AsyncOpenAI, not {client!r}")
    accelerated = _accelerated.get(cls)
    if accelerated is None:
        accelerated = _accelerated[cls] = _accelerated_class(cls)
    client.__class__ = accelerated
    for name in ("chat", "responses"):  # built already: built again, with the extras
        vars(client).pop(name, None)
    return client


def _accelerated_class(cls: type[Any]) -> type[Any]:
    """``cls`` with the engine's two methods. (Not a mixin: CPython refuses to give an
    object a class whose first base is not its own class's, when a Generic is among
    the bases, as it is in openai's clients.)"""
    methods: dict[str, Any]
    if issubclass(cls, openai.AsyncOpenAI):

        async def aoptions(self: Any, options: Any) -> Any:
            await start_turn()
            return await cls._prepare_options(self, options)

        async def aprepare(self: Any, request: httpx2.Request) -> None:
            await cls._prepare_request(self, request)
            _stamp(request)

        async def aprocess(self: Any, **kwargs: Any) -> Any:
            return await cls._process_response(self, **await _async_kwargs(kwargs))

        methods = {
            "_prepare_options": aoptions,
            "_prepare_request": aprepare,
            "_process_response": aprocess,
            "chat": AsyncEngine.__dict__["chat"],
            "responses": AsyncEngine.__dict__["responses"],
        }
    else:

        def prepare(self: Any, request: httpx2.Request) -> None:
            cls._prepare_request(self, request)
            _stamp(request)

        def process(self: Any, **kwargs: Any) -> Any:
            return cls._process_response(self, **_sync_kwargs(kwargs))

        methods = {
            "_prepare_request": prepare,
            "_process_response": process,
            "chat": SyncEngine.__dict__["chat"],
            "responses": SyncEngine.__dict__["responses"],
        }
    namespace = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__slots__": (),
        "_deltastream_engine": True,
        **methods,
    }
    return type(cls.__name__, (cls,), namespace)
