"""``client.chat.completions.create``: streamed or whole, sync or async."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack, overload

import httpx2

from ...engine._deadlines import Timeout
from ...engine._decode import EventDecodeError, decode_chat_completion
from ...engine._errors import APIResponseValidationError
from ...engine._http import asend, send
from ...engine._streams import aopen_stream, open_stream
from ...engine.types.chat import ChatCompletion, ChatCompletionChunk
from .._streams import AsyncStream, Stream

if TYPE_CHECKING:
    from .._client import AsyncClient, Client

__all__ = ["AsyncChat", "AsyncCompletions", "Chat", "ChatCompletionParams", "Completions"]

_PATH = "/chat/completions"


class ChatCompletionParams(TypedDict, total=False):
    """Request fields besides ``model``, ``messages`` and ``stream``, plus per-call
    options. Unknown request fields go in ``extra_body``."""

    audio: Mapping[str, Any] | None
    frequency_penalty: float | None
    function_call: str | Mapping[str, Any]
    functions: Iterable[Mapping[str, Any]]
    logit_bias: Mapping[str, int] | None
    logprobs: bool | None
    max_completion_tokens: int | None
    max_tokens: int | None
    metadata: Mapping[str, str] | None
    modalities: list[str] | None
    n: int | None
    parallel_tool_calls: bool
    prediction: Mapping[str, Any] | None
    presence_penalty: float | None
    reasoning_effort: str | None
    response_format: Mapping[str, Any]
    seed: int | None
    service_tier: str | None
    stop: str | list[str] | None
    store: bool | None
    stream_options: Mapping[str, Any] | None
    temperature: float | None
    tool_choice: str | Mapping[str, Any]
    tools: Iterable[Mapping[str, Any]]
    top_logprobs: int | None
    top_p: float | None
    user: str
    # per-call options, not sent as fields
    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, Any] | None
    extra_body: Mapping[str, Any] | None
    timeout: float | Timeout | httpx2.Timeout | None
    max_retries: int | None
    require_done: bool


_OPTION_KEYS = frozenset(
    ("extra_headers", "extra_query", "extra_body", "timeout", "max_retries", "require_done")
)
_LISTS = frozenset(("tools", "functions"))  # iterables the body sends as JSON arrays


def _split(
    model: str, messages: Iterable[Mapping[str, Any]], stream: bool, params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    options = {key: params.pop(key) for key in _OPTION_KEYS.intersection(params)}
    body: dict[str, Any] = {"model": model, "messages": list(messages)}
    body.update(params)
    for key in _LISTS.intersection(params):
        body[key] = list(params[key])
    if stream:
        body["stream"] = True
    extra_body = options.pop("extra_body", None)
    if extra_body:
        body.update(extra_body)
    return body, options


def _completion(response: httpx2.Response, data: bytes) -> ChatCompletion:
    try:
        return decode_chat_completion(data)
    except EventDecodeError as exc:
        raise APIResponseValidationError(str(exc), response=response, body=data) from None


class Completions:
    def __init__(self, client: Client) -> None:
        self._client = client

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[True],
        **params: Unpack[ChatCompletionParams],
    ) -> Stream[ChatCompletionChunk]: ...
    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[False] = False,
        **params: Unpack[ChatCompletionParams],
    ) -> ChatCompletion: ...
    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: bool,
        **params: Unpack[ChatCompletionParams],
    ) -> Stream[ChatCompletionChunk] | ChatCompletion: ...
    def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: bool = False,
        **params: Unpack[ChatCompletionParams],
    ) -> Stream[ChatCompletionChunk] | ChatCompletion:
        client = self._client
        body, options = _split(model, messages, stream, dict(params))
        request = client._options(_PATH, body, stream=stream, **options)
        if not stream:
            response = send(client._http, request)
            try:
                data = response.read()
            finally:
                response.close()
            return _completion(response, data)

        def make() -> Stream[ChatCompletionChunk]:
            return Stream(None, timeout=request.timeout, require_done=request.require_done)

        return open_stream(client._http, request, make)


class AsyncCompletions:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[True],
        **params: Unpack[ChatCompletionParams],
    ) -> AsyncStream[ChatCompletionChunk]: ...
    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: Literal[False] = False,
        **params: Unpack[ChatCompletionParams],
    ) -> ChatCompletion: ...
    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: bool,
        **params: Unpack[ChatCompletionParams],
    ) -> AsyncStream[ChatCompletionChunk] | ChatCompletion: ...
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[Mapping[str, Any]],
        stream: bool = False,
        **params: Unpack[ChatCompletionParams],
    ) -> AsyncStream[ChatCompletionChunk] | ChatCompletion:
        client = self._client
        body, options = _split(model, messages, stream, dict(params))
        request = client._options(_PATH, body, stream=stream, **options)
        if not stream:
            response = await asend(client._http, request)
            try:
                data = await response.aread()
            finally:
                await response.aclose()
            return _completion(response, data)

        def make() -> AsyncStream[ChatCompletionChunk]:
            return AsyncStream(None, timeout=request.timeout, require_done=request.require_done)

        return await aopen_stream(client._http, request, make)


class Chat:
    def __init__(self, client: Client) -> None:
        self.completions = Completions(client)


class AsyncChat:
    def __init__(self, client: AsyncClient) -> None:
        self.completions = AsyncCompletions(client)
