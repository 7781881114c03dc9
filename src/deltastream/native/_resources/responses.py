"""``client.responses``: create (streamed or whole), retrieve (optionally streaming from a
cursor) and cancel, sync or async."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack, overload
from urllib.parse import quote

import httpx2

from ...engine._deadlines import Timeout
from ...engine._decode import EventDecodeError, decode_response
from ...engine._errors import APIResponseValidationError
from ...engine._http import (
    RequestOptions,
    aensure_event_stream,
    asend,
    ensure_event_stream,
    send,
)
from ...engine._protocol import ResponseEventStream
from ...engine._streams import FINISHED_STATUSES, aopen_stream, open_stream
from ...engine.types.responses import Response, ResponseStreamEvent
from .._streams import AsyncStream, Stream

if TYPE_CHECKING:
    from .._client import AsyncClient, Client, _ClientConfig

__all__ = ["AsyncResponses", "RequestCallOptions", "ResponseCreateParams", "Responses"]

_PATH = "/responses"
_CURSOR_PARAMS = frozenset({"stream", "starting_after"})

ResponseInput = str | Iterable[Mapping[str, Any]]


class RequestCallOptions(TypedDict, total=False):
    """Per-call options, not sent as request fields."""

    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, Any] | None
    extra_body: Mapping[str, Any] | None
    timeout: float | Timeout | httpx2.Timeout | None
    max_retries: int | None
    require_done: bool


class ResponseCreateParams(RequestCallOptions, total=False):
    """Request fields besides ``model``, ``input`` and ``stream``. Unknown request fields
    go in ``extra_body``."""

    background: bool | None
    conversation: str | Mapping[str, Any] | None
    include: list[str] | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    metadata: Mapping[str, str] | None
    parallel_tool_calls: bool | None
    previous_response_id: str | None
    prompt: Mapping[str, Any] | None
    prompt_cache_key: str | None
    reasoning: Mapping[str, Any] | None
    safety_identifier: str | None
    service_tier: str | None
    store: bool | None
    stream_options: Mapping[str, Any] | None
    temperature: float | None
    text: Mapping[str, Any] | None
    tool_choice: str | Mapping[str, Any]
    tools: Iterable[Mapping[str, Any]]
    top_logprobs: int | None
    top_p: float | None
    truncation: str | None
    user: str


_OPTION_KEYS = tuple(RequestCallOptions.__annotations__)


def _create_request(
    client: _ClientConfig,
    model: str,
    input: ResponseInput | None,
    stream: bool,
    params: dict[str, Any],
) -> RequestOptions:
    options = {key: params.pop(key) for key in _OPTION_KEYS if key in params}
    body: dict[str, Any] = {"model": model}
    if input is not None:
        body["input"] = input if isinstance(input, str) else list(input)
    for key, value in params.items():
        body[key] = list(value) if key == "tools" else value
    if stream:
        body["stream"] = True
    extra_body = options.pop("extra_body", None)
    if extra_body:
        body.update(extra_body)
    return client._options(_PATH, body, stream=stream, **options)


def _id_request(
    client: _ClientConfig,
    method: str,
    path: str,
    stream: bool,
    query: dict[str, Any],
    options: dict[str, Any],
) -> RequestOptions:
    options.pop("extra_body", None)
    extra_query = options.pop("extra_query", None)
    if extra_query:
        query.update(extra_query)
    request = client._options(path, {}, stream=stream, **options)
    return dataclasses.replace(request, method=method, body=None, params=query or None)


def _retrieve_query(stream: bool, starting_after: int | None) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if stream:
        query["stream"] = "true"
    if starting_after is not None:
        query["starting_after"] = starting_after
    return query


def _response(response: httpx2.Response, data: bytes) -> Response:
    try:
        return decode_response(data)
    except EventDecodeError as exc:
        raise APIResponseValidationError(str(exc), response=response, body=data) from None


def _read(http: httpx2.Client, request: RequestOptions) -> Response:
    response = send(http, request)
    try:
        data = response.read()
    finally:
        response.close()
    return _response(response, data)


def _stored(
    request: RequestOptions, response_id: str, params: dict[str, Any] | None
) -> RequestOptions:
    """A GET of the stored response ``response_id``, on the same server as ``request``."""
    base = request.url[: request.url.rindex(_PATH)]
    url = f"{base}{_PATH}/{quote(response_id, safe='')}"
    return dataclasses.replace(request, method="GET", url=url, body=None, params=params)


def _status_request(request: RequestOptions, response_id: str) -> RequestOptions:
    """The request that reads the stored response ``response_id`` (is it over?)."""
    params = {k: v for k, v in (request.params or {}).items() if k not in _CURSOR_PARAMS}
    return dataclasses.replace(_stored(request, response_id, params or None), stream=False)


def _resume_request(request: RequestOptions, response_id: str, after: int | None) -> RequestOptions:
    """The request that streams ``response_id`` again from after event ``after`` (None:
    from where the request first asked)."""
    params = {**(request.params or {}), "stream": "true"}
    if after is not None:
        params["starting_after"] = after
    return _stored(request, response_id, params)


def _stream(
    http: httpx2.Client, request: RequestOptions, *, resumable: bool, response_id: str | None = None
) -> Stream[ResponseStreamEvent]:
    def resume(response_id: str, after: int | None) -> httpx2.Response:
        return ensure_event_stream(send(http, _resume_request(request, response_id, after)))

    def finished(response_id: str) -> bool:
        return _read(http, _status_request(request, response_id)).status in FINISHED_STATUSES

    def make() -> Stream[ResponseStreamEvent]:
        return Stream(
            None,
            timeout=request.timeout,
            require_done=request.require_done,
            core=ResponseEventStream,
            resume=resume if resumable else None,
            max_resumes=request.max_retries,
            response_id=response_id,
            finished=finished if resumable else None,
        )

    return open_stream(http, request, make)


async def _aread(http: httpx2.AsyncClient, request: RequestOptions) -> Response:
    response = await asend(http, request)
    try:
        data = await response.aread()
    finally:
        await response.aclose()
    return _response(response, data)


async def _astream(
    http: httpx2.AsyncClient,
    request: RequestOptions,
    *,
    resumable: bool,
    response_id: str | None = None,
) -> AsyncStream[ResponseStreamEvent]:
    async def resume(response_id: str, after: int | None) -> httpx2.Response:
        return await aensure_event_stream(
            await asend(http, _resume_request(request, response_id, after))
        )

    async def finished(response_id: str) -> bool:
        stored = await _aread(http, _status_request(request, response_id))
        return stored.status in FINISHED_STATUSES

    def make() -> AsyncStream[ResponseStreamEvent]:
        return AsyncStream(
            None,
            timeout=request.timeout,
            require_done=request.require_done,
            core=ResponseEventStream,
            resume=resume if resumable else None,
            max_resumes=request.max_retries,
            response_id=response_id,
            finished=finished if resumable else None,
        )

    return await aopen_stream(http, request, make)


class Responses:
    def __init__(self, client: Client) -> None:
        self._client = client

    @overload
    def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: Literal[True],
        **params: Unpack[ResponseCreateParams],
    ) -> Stream[ResponseStreamEvent]: ...
    @overload
    def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: Literal[False] = False,
        **params: Unpack[ResponseCreateParams],
    ) -> Response: ...
    @overload
    def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: bool,
        **params: Unpack[ResponseCreateParams],
    ) -> Stream[ResponseStreamEvent] | Response: ...
    def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: bool = False,
        **params: Unpack[ResponseCreateParams],
    ) -> Stream[ResponseStreamEvent] | Response:
        request = _create_request(self._client, model, input, stream, dict(params))
        if stream:
            resumable = bool(params.get("background"))
            return _stream(self._client._http, request, resumable=resumable)
        return _read(self._client._http, request)

    @overload
    def retrieve(
        self,
        response_id: str,
        *,
        stream: Literal[True],
        starting_after: int | None = None,
        **options: Unpack[RequestCallOptions],
    ) -> Stream[ResponseStreamEvent]: ...
    @overload
    def retrieve(
        self,
        response_id: str,
        *,
        stream: Literal[False] = False,
        starting_after: int | None = None,
        **options: Unpack[RequestCallOptions],
    ) -> Response: ...
    def retrieve(
        self,
        response_id: str,
        *,
        stream: bool = False,
        starting_after: int | None = None,
        **options: Unpack[RequestCallOptions],
    ) -> Stream[ResponseStreamEvent] | Response:
        """Fetch a stored response; with ``stream=True``, replay its events (from the one
        after ``starting_after``, a ``sequence_number``)."""
        query = _retrieve_query(stream, starting_after)
        path = f"{_PATH}/{quote(response_id, safe='')}"
        request = _id_request(self._client, "GET", path, stream, query, dict(options))
        if stream:
            return _stream(self._client._http, request, resumable=True, response_id=response_id)
        return _read(self._client._http, request)

    def cancel(self, response_id: str, **options: Unpack[RequestCallOptions]) -> Response:
        """Cancel a background response."""
        path = f"{_PATH}/{quote(response_id, safe='')}/cancel"
        request = _id_request(self._client, "POST", path, False, {}, dict(options))
        return _read(self._client._http, request)


class AsyncResponses:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @overload
    async def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: Literal[True],
        **params: Unpack[ResponseCreateParams],
    ) -> AsyncStream[ResponseStreamEvent]: ...
    @overload
    async def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: Literal[False] = False,
        **params: Unpack[ResponseCreateParams],
    ) -> Response: ...
    @overload
    async def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: bool,
        **params: Unpack[ResponseCreateParams],
    ) -> AsyncStream[ResponseStreamEvent] | Response: ...
    async def create(
        self,
        *,
        model: str,
        input: ResponseInput | None = None,
        stream: bool = False,
        **params: Unpack[ResponseCreateParams],
    ) -> AsyncStream[ResponseStreamEvent] | Response:
        request = _create_request(self._client, model, input, stream, dict(params))
        if stream:
            resumable = bool(params.get("background"))
            return await _astream(self._client._http, request, resumable=resumable)
        return await _aread(self._client._http, request)

    @overload
    async def retrieve(
        self,
        response_id: str,
        *,
        stream: Literal[True],
        starting_after: int | None = None,
        **options: Unpack[RequestCallOptions],
    ) -> AsyncStream[ResponseStreamEvent]: ...
    @overload
    async def retrieve(
        self,
        response_id: str,
        *,
        stream: Literal[False] = False,
        starting_after: int | None = None,
        **options: Unpack[RequestCallOptions],
    ) -> Response: ...
    async def retrieve(
        self,
        response_id: str,
        *,
        stream: bool = False,
        starting_after: int | None = None,
        **options: Unpack[RequestCallOptions],
    ) -> AsyncStream[ResponseStreamEvent] | Response:
        """See :meth:`Responses.retrieve`."""
        query = _retrieve_query(stream, starting_after)
        path = f"{_PATH}/{quote(response_id, safe='')}"
        request = _id_request(self._client, "GET", path, stream, query, dict(options))
        if stream:
            http = self._client._http
            return await _astream(http, request, resumable=True, response_id=response_id)
        return await _aread(self._client._http, request)

    async def cancel(self, response_id: str, **options: Unpack[RequestCallOptions]) -> Response:
        """See :meth:`Responses.cancel`."""
        path = f"{_PATH}/{quote(response_id, safe='')}/cancel"
        request = _id_request(self._client, "POST", path, False, {}, dict(options))
        return await _aread(self._client._http, request)
