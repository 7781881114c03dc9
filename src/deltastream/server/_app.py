"""The Starlette app: routes, authentication, fault selection, backends.

Routes: ``POST /v1/chat/completions`` and the Responses API (scripted and llama
backends; see :mod:`.responses`), any ``POST`` path
(replay backend), any ``GET`` or ``POST`` under ``/v1`` (proxy backend), ``GET
/v1/models`` and ``/v1/models/{id}``, ``GET /health``, ``GET /_deltastream/stats``.
Every error is OpenAI-shaped JSON; every response carries an ``x-request-id``; every
request gets an access log line (:mod:`._access`).
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import wraps
from pathlib import Path
from typing import Final, Literal

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._access import AccessLog
from ._body import BodyItem, Pause, apply_faults, rechunk
from ._chat import ChatRenderer, chat_completion, chat_stream
from ._connections import ServerStats
from ._errors import APIError, error_response
from ._faults import AttemptCounter, FaultParseError, Faults, parse_faults
from ._pace import Pace, paced, parse_replay_pace
from ._params import refuse_unsupported
from ._pieces import Piece
from ._respond import StreamResponse
from ._validate import ChatRequest, parse_json_body, validate_chat_request
from ._wire import EVENT_STREAM, ChunkFactory, encode_json, random_id
from .backends import scripted
from .backends._llama_gen import DEFAULT_MAX_TOKENS
from .backends.llama import LlamaBackend, ModelNotFound, Overloaded
from .backends.proxy import Upstream, is_event_stream
from .backends.replay import ReplayLibrary
from .responses import ResponsesAPI, ResponseStore

__all__ = ["CHUNK_SIZE_HEADER", "FAULT_HEADER", "create_app"]

FAULT_HEADER: Final = "X-Deltastream-Fault"
CHUNK_SIZE_HEADER: Final = "X-Deltastream-Chunk-Size"
MAX_BODY_BYTES: Final = 16 * 1024 * 1024
MAX_CHUNK_SIZE: Final = 16 * 1024 * 1024
SCRIPTED_MODELS: Final = ("deltastream-scripted", "gpt-4o-mini", "gpt-4o", "gpt-4")

Handler = Callable[[Request], Awaitable[Response]]
Backend = Literal["scripted", "replay", "llama", "proxy"]


def _json(value: object, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(encode_json(value), status_code=status, media_type=media_type)


def _openai_errors(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except APIError as exc:
            return exc.to_response()

    return wrapper


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        message = f"Invalid URL ({request.method} {request.url.path})"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, headers=exc.headers)


class _BodyLimit:
    """Refuses a request body over ``limit`` bytes with OpenAI's kind of error, inside
    the middleware that gives every response its ``x-request-id`` (Starlette's own limit
    answers in plain text, outside it). Declared too large, it is refused before a byte
    is read; sent too large, at the first read past the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        error = APIError(413, f"The request body is larger than the limit of {limit} bytes.")
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await error.to_response()(scope, receive, send)
            return
        size = 0

        async def receive_within() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise error  # the route's handler answers it (see _openai_errors)
            return message

        await self.app(scope, receive_within, send)


class _RequestIds:
    """Adds ``x-request-id`` to every response and counts requests."""

    def __init__(self, app: ASGIApp, stats: ServerStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.stats.requests += 1
        request_id = ("req_" + uuid.uuid4().hex).encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", request_id)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _mask(key: str) -> str:
    return key[:3] + "*" * 6 + key[-4:] if len(key) > 10 else "*" * len(key)


def _chunk_size(request: Request) -> int | None:
    value = request.headers.get(CHUNK_SIZE_HEADER)
    if value is None:
        return None
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_CHUNK_SIZE:
        raise APIError(
            400,
            f"Invalid {CHUNK_SIZE_HEADER} header {value!r}: expected 1 to {MAX_CHUNK_SIZE} bytes.",
            param=CHUNK_SIZE_HEADER,
            code="invalid_chunk_size",
        )
    return int(value)


def _model_of(raw: bytes) -> str:
    """The request body's ``model``, or ``""`` (the proxy does not validate bodies)."""
    try:
        body = parse_json_body(raw) if raw else {}
    except APIError:
        return ""
    model = body.get("model")
    return model if isinstance(model, str) else ""


def _injected_json(content_type: str) -> Response:
    message = "Injected fault: a JSON body instead of an event stream."
    error = {"error": {"message": message, "type": "server_error", "code": "injected"}}
    return _json(error, media_type=content_type)


async def _no_events() -> AsyncIterator[BodyItem]:
    return
    yield  # an async generator that yields nothing


class _Service:
    def __init__(
        self,
        backend: Backend,
        library: ReplayLibrary | None,
        faults_text: str | None,
        api_key: str | None,
        pace: Pace,
        llama: LlamaBackend | None = None,
        *,
        replay_pace: Pace | None = None,
        upstream: Upstream | None = None,
        mirror_function_call: bool = True,
    ) -> None:
        self.backend = backend
        self.mirror_function_call = mirror_function_call
        self.responses = ResponseStore()
        self.library = library
        self.llama = llama
        self.upstream = upstream
        self.replay_pace = replay_pace or Pace()
        self.default_faults = parse_faults(faults_text)
        self.default_key = "default:" + (faults_text or "")
        self.api_key = api_key
        self.pace = pace
        self.stats = ServerStats()
        self.attempts = AttemptCounter()

    def authorize(self, request: Request) -> None:
        if self.api_key is None or not request.url.path.startswith("/v1/"):
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if not hmac.compare_digest(token.encode(), self.api_key.encode()):
            raise APIError(
                401, f"Incorrect API key provided: {_mask(token)}.", code="invalid_api_key"
            )

    def faults(self, request: Request) -> tuple[Faults, str]:
        """The faults for this request, and the key its attempts are counted under."""
        text = request.headers.get(FAULT_HEADER)
        if text is None:
            faults, key = self.default_faults, self.default_key
        else:
            try:
                faults, key = parse_faults(text), "header:" + text
            except FaultParseError as exc:
                raise APIError(
                    400,
                    f"Invalid {FAULT_HEADER} header: {exc}",
                    param=FAULT_HEADER,
                    code="invalid_fault",
                ) from None
        return faults, ("key:" + faults.key if faults.key else key)

    def fail_if_asked(self, faults: Faults, key: str) -> None:
        if faults.status is None:
            return
        attempt = self.attempts.next_attempt(key)
        if attempt > faults.times:
            return
        headers = {}
        if faults.retry_after is not None:
            headers["retry-after"] = f"{faults.retry_after:g}"
        if faults.retry_after_ms is not None:
            headers["retry-after-ms"] = str(faults.retry_after_ms)
        if faults.should_retry is not None:
            headers["x-should-retry"] = "true" if faults.should_retry else "false"
        raise APIError(
            faults.status,
            f"Injected fault: HTTP {faults.status} (attempt {attempt} of {faults.times}).",
            code="injected",
            headers=headers,
        )

    async def stream(
        self,
        request: Request,
        source: AsyncIterator[BodyItem],
        faults: Faults,
        *,
        responses_api: bool = False,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> Response:
        try:
            size = _chunk_size(request)
        except APIError:
            if on_close is not None:
                await on_close()
            raise
        body = rechunk(apply_faults(source, faults, responses_api=responses_api), size)
        headers = {"content-type": faults.content_type or EVENT_STREAM, "cache-control": "no-cache"}
        return StreamResponse(
            body,
            stats=self.stats,
            headers=headers,
            responses_api=responses_api,
            on_close=on_close,
        )

    async def health(self, request: Request) -> Response:
        return _json({"status": "ok", "backend": self.backend})

    async def stats_route(self, request: Request) -> Response:
        return _json(self.stats.snapshot())

    def _model_names(self) -> list[str]:
        if self.llama is not None:
            return [self.llama.model_path.stem]
        return self.library.models() if self.library else list(SCRIPTED_MODELS)

    async def models(self, request: Request) -> Response:
        self.authorize(request)
        return _json({"object": "list", "data": [_model(name) for name in self._model_names()]})

    async def model(self, request: Request) -> Response:
        """``GET /v1/models/{id}``: one model, or OpenAI's 404 for a name it does not
        list (a replay model's name is a path, slashes and all)."""
        self.authorize(request)
        name = request.path_params["model"]
        if name not in self._model_names():
            raise APIError(
                404,
                f"The model `{name}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        return _json(_model(name))

    async def chat(self, request: Request) -> Response:
        self.authorize(request)
        faults, key = self.faults(request)
        raw = await request.body()
        body = parse_json_body(raw)
        chat = validate_chat_request(body)
        request.state.model = chat.model
        refuse_unsupported(body, self.backend)
        self.fail_if_asked(faults, key)
        factory, source = await self.generate(chat, raw)
        renderer = ChatRenderer(chat, factory, mirror=self.mirror_function_call)
        if not chat.stream:
            return _json(await chat_completion(renderer, source))
        if faults.content_type and "json" in faults.content_type:
            return _json(await chat_completion(renderer, source), media_type=faults.content_type)
        return await self.stream(request, chat_stream(renderer, source), faults)

    async def generate(
        self, chat: ChatRequest, raw: bytes
    ) -> tuple[ChunkFactory, AsyncIterator[Piece | Pause]]:
        """The reply's pieces, from the model or the script, and a chunk factory for them."""
        usage_slot = chat.stream and chat.include_usage
        if self.llama is None:
            reply = scripted.plan_reply(chat, raw)
            factory = ChunkFactory(reply.reply_id, reply.created, chat.model, usage_slot=usage_slot)
            return factory, scripted.pieces(reply, self.pace)
        created = int(time.time())
        factory = ChunkFactory(random_id("chatcmpl-"), created, chat.model, usage_slot=usage_slot)
        try:
            return factory, await self.llama.start(chat)
        except Overloaded as exc:
            raise APIError(
                429, str(exc), code="rate_limit_exceeded", headers={"retry-after": "1"}
            ) from None

    async def generate_pieces(self, chat: ChatRequest, raw: bytes) -> AsyncIterator[Piece | Pause]:
        return (await self.generate(chat, raw))[1]

    async def replay(self, request: Request) -> Response:
        assert self.library is not None
        self.authorize(request)
        faults, key = self.faults(request)
        body = parse_json_body(await request.body())
        model = body.get("model")
        if not isinstance(model, str):
            raise APIError(400, "you must provide a model parameter (the recording to replay)")
        request.state.model = model
        path = self.library.resolve(model)
        self.fail_if_asked(faults, key)
        if faults.content_type and "json" in faults.content_type:
            return _injected_json(faults.content_type)
        responses_api = "/responses" in request.url.path
        events = paced(self.library.events(path), self.replay_pace)
        return await self.stream(request, events, faults, responses_api=responses_api)

    async def retrieve_response(self, request: Request) -> Response:
        """``GET /v1/responses/{id}``: a recorded response, or its stream from a cursor."""
        assert self.library is not None
        self.authorize(request)
        faults, key = self.faults(request)
        response_id = request.path_params["response_id"]
        path = await asyncio.to_thread(self.library.find_response, response_id)
        self.fail_if_asked(faults, key)
        if request.query_params.get("stream", "").lower() != "true":
            return _json(await asyncio.to_thread(self.library.final_response, path))
        after = request.query_params.get("starting_after")
        if after is not None and not after.isdigit():
            raise APIError(
                400,
                f"Invalid 'starting_after': expected an integer, got {after!r}.",
                param="starting_after",
            )
        events = self.library.events(path, None if after is None else int(after))
        return await self.stream(
            request, paced(events, self.replay_pace), faults, responses_api=True
        )

    async def proxy(self, request: Request) -> Response:
        """Any ``/v1`` request, forwarded upstream (see :mod:`._proxy`)."""
        assert self.upstream is not None
        self.authorize(request)
        faults, key = self.faults(request)
        raw = await request.body()
        model = _model_of(raw)
        request.state.model = model
        self.fail_if_asked(faults, key)
        responses_api = "/responses" in request.url.path
        if faults.headers_only or faults.trickle is not None:
            return await self.stream(request, _no_events(), faults, responses_api=responses_api)
        response = await self.upstream.send(request, raw)
        if response.status_code != 200 or not is_event_stream(response):
            return await self.upstream.passthrough(response)
        if faults.content_type and "json" in faults.content_type:
            await response.aclose()
            return _injected_json(faults.content_type)
        return await self.stream(
            request,
            self.upstream.relay(response, model or "model"),
            faults,
            responses_api=responses_api,
            on_close=response.aclose,
        )


def create_app(
    backend: str = "scripted",
    *,
    replay_dir: str | Path | None = None,
    default_faults: str | None = None,
    api_key: str | None = None,
    tokens_per_second: float | None = None,
    first_token_ms: float | None = None,
    model_path: str | Path | None = None,
    max_concurrent: int = 1,
    queue_limit: int = 8,
    replay_pace: float | str | None = None,
    upstream: str | None = None,
    upstream_api_key: str | None = None,
    record_dir: str | Path | None = None,
    legacy_function_call: bool = True,
    default_max_tokens: int | None = None,
) -> Starlette:
    """The local OpenAI-compatible server as an ASGI app.

    ``backend`` is ``"scripted"`` (deterministic replies to any prompt), ``"replay"``
    (the request's ``model`` names a recorded ``.sse`` file under ``replay_dir``),
    ``"llama"`` (a GGUF model, ``model_path``) or ``"proxy"`` (forward to the
    ``upstream`` base URL, with ``upstream_api_key`` if given, recording streams into
    ``record_dir`` if given).
    ``default_faults`` applies to requests without an ``X-Deltastream-Fault`` header
    (see :mod:`deltastream.server._faults` for the grammar); a bad value raises
    ``ValueError``. With ``api_key``, every ``/v1`` request needs
    ``Authorization: Bearer <api_key>``. ``tokens_per_second`` and ``first_token_ms``
    slow the scripted backend down to a chosen pace. A replay goes as fast as possible
    unless ``replay_pace`` (events per second, or ``"asfast"``) or else
    ``tokens_per_second`` sets its pace; ``first_token_ms`` delays its first event.
    ``default_max_tokens`` caps a llama reply whose request sets no limit (default 1024).
    With ``legacy_function_call`` (the default), a call to the one function of a request
    that offered exactly one is also carried in the legacy ``function_call`` fields.
    """
    library: ReplayLibrary | None = None
    llama: LlamaBackend | None = None
    proxy: Upstream | None = None
    if backend == "llama":
        try:
            llama = LlamaBackend(
                model_path,
                max_concurrent=max_concurrent,
                queue_limit=queue_limit,
                default_max_tokens=default_max_tokens or DEFAULT_MAX_TOKENS,
            )
            llama.load()
        except ModelNotFound as exc:  # an OSError: keep it apart from "cannot listen"
            raise ValueError(str(exc)) from None
    elif backend == "replay":
        if replay_dir is None:
            raise ValueError("the replay backend needs replay_dir")
        library = ReplayLibrary(replay_dir)
    elif backend == "proxy":
        if upstream is None:
            raise ValueError("the proxy backend needs an upstream URL")
        proxy = Upstream(upstream, api_key=upstream_api_key, record_dir=record_dir)
    elif backend != "scripted":
        raise ValueError(
            f"unknown backend {backend!r}: expected 'scripted', 'replay', 'llama' or 'proxy'"
        )
    if tokens_per_second is not None and tokens_per_second <= 0:
        raise ValueError("tokens_per_second must be positive")
    if first_token_ms is not None and first_token_ms < 0:
        raise ValueError("first_token_ms must not be negative")
    if isinstance(replay_pace, str):
        replay_pace = parse_replay_pace(replay_pace)
    elif replay_pace is not None and not 0 < replay_pace < float("inf"):
        raise ValueError("replay_pace must be positive (events per second)")
    kind: Backend = "llama" if llama else "replay" if library else "proxy" if proxy else "scripted"
    service = _Service(
        kind,
        library,
        default_faults,
        api_key,
        Pace(tokens_per_second, first_token_ms),
        llama,
        replay_pace=Pace(replay_pace or tokens_per_second, first_token_ms),
        upstream=proxy,
        mirror_function_call=legacy_function_call,
    )
    return _starlette(service)


def _model(name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "deltastream"}


def _starlette(service: _Service) -> Starlette:
    routes = [
        Route("/health", service.health, methods=["GET"]),
        Route("/_deltastream/stats", service.stats_route, methods=["GET"]),
    ]
    if service.upstream is not None:
        forward = _openai_errors(service.proxy)
        routes.append(Route("/v1/{path:path}", forward, methods=["GET", "POST"]))
    else:
        routes.append(Route("/v1/models", _openai_errors(service.models), methods=["GET"]))
        model = _openai_errors(service.model)
        routes.append(Route("/v1/models/{model:path}", model, methods=["GET"]))
    if service.library is not None:
        retrieve = _openai_errors(service.retrieve_response)
        routes.append(Route("/v1/responses/{response_id}", retrieve, methods=["GET"]))
        routes.append(Route("/{path:path}", _openai_errors(service.replay), methods=["POST"]))
    elif service.upstream is None:
        routes.append(Route("/v1/chat/completions", _openai_errors(service.chat), methods=["POST"]))
        api = ResponsesAPI(service, service.generate_pieces, service.responses)
        routes += [
            Route("/v1/responses", _openai_errors(api.create), methods=["POST"]),
            Route("/v1/responses/{response_id}", _openai_errors(api.retrieve), methods=["GET"]),
            Route("/v1/responses/{response_id}", _openai_errors(api.delete), methods=["DELETE"]),
            Route(
                "/v1/responses/{response_id}/input_items",
                _openai_errors(api.input_items),
                methods=["GET"],
            ),
            Route(
                "/v1/responses/{response_id}/cancel", _openai_errors(api.cancel), methods=["POST"]
            ),
        ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await service.responses.aclose()
        if service.upstream is not None:
            await service.upstream.aclose()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLog),
            Middleware(_RequestIds, stats=service.stats),
            Middleware(_BodyLimit, limit=MAX_BODY_BYTES),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.deltastream_stats = service.stats
    return app
