"""The Responses API routes of the generating backends (scripted and llama).

``POST /v1/responses`` (streamed or not, ``background`` or not),
``GET /v1/responses/{id}`` (the response object, or with ``?stream=true`` its events
after ``starting_after``), ``POST /v1/responses/{id}/cancel``,
``GET /v1/responses/{id}/input_items`` and ``DELETE /v1/responses/{id}``. Faults apply to every
stream, a resumed one included, counting that connection's events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from .._body import Pause
from .._errors import APIError
from .._faults import Faults
from .._pieces import Piece
from .._validate import ChatRequest, parse_json_body
from .._wire import encode_json
from ._build import ResponseBuilder
from ._items import check_unique, page
from ._request import validate_responses_request
from ._store import ResponseStore, StoredResponse

__all__ = ["Generate", "ResponsesAPI"]

#: Starts a generation (raising a 400 or 429 APIError before anything is sent).
Generate = Callable[[ChatRequest, bytes], Awaitable[AsyncIterator[Piece | Pause]]]


class Host(Protocol):
    """What the app lends these routes."""

    def authorize(self, request: Request) -> None: ...
    def faults(self, request: Request) -> tuple[Faults, str]: ...
    def fail_if_asked(self, faults: Faults, key: str) -> None: ...
    async def stream(
        self,
        request: Request,
        source: AsyncIterator[bytes],
        faults: Faults,
        *,
        responses_api: bool = False,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> Response: ...


def _json(value: object, media_type: str = "application/json") -> Response:
    return Response(encode_json(value), media_type=media_type)


def _cursor(request: Request) -> int:
    after = request.query_params.get("starting_after")
    if after is None:
        return -1
    if not after.isdigit():
        raise APIError(
            400,
            f"Invalid 'starting_after': expected a sequence number (an integer >= 0), "
            f"got {after!r}.",
            param="starting_after",
        )
    return int(after)


class ResponsesAPI:
    def __init__(self, host: Host, generate: Generate, store: ResponseStore) -> None:
        self.host = host
        self.generate = generate
        self.store = store

    async def create(self, request: Request) -> Response:
        self.host.authorize(request)
        faults, key = self.host.faults(request)
        raw = await request.body()
        parsed = validate_responses_request(parse_json_body(raw))
        request.state.model = parsed.model
        history: tuple[dict[str, object], ...] = ()
        history_items: tuple[dict[str, object], ...] = ()
        if parsed.previous_response_id is not None:
            previous = self._previous(parsed.previous_response_id)
            history, history_items = previous.conversation, previous.context_items
        check_unique((*history_items, *parsed.input_items))
        self.host.fail_if_asked(faults, key)
        self.store.admit()
        pieces = await self.generate(parsed.chat_request(history), raw)
        stored = StoredResponse(ResponseBuilder(parsed), history, parsed.input, history_items)
        self.store.add(stored)
        stored.run(pieces)
        if parsed.background and not parsed.stream:
            return _json(stored.builder.snapshot())
        if not parsed.stream or (faults.content_type and "json" in faults.content_type):
            await stored.wait()
            return _json(stored.builder.snapshot(), faults.content_type or "application/json")

        async def on_close() -> None:
            if not stored.background:  # nobody can come back for it: stop generating
                stored.cancel("The client closed the stream.")

        return await self.host.stream(
            request, stored.follow(), faults, responses_api=True, on_close=on_close
        )

    def _previous(self, response_id: str) -> StoredResponse:
        try:
            previous = self.store.get(response_id)
        except APIError:
            raise APIError(  # OpenAI's answer: a 400, not a 404
                400,
                f"Previous response with id '{response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            ) from None
        if previous.finished_at is None:
            raise APIError(
                400,
                f"Previous response with id '{response_id}' is still in progress; wait for it "
                "to finish before continuing the conversation.",
                param="previous_response_id",
            )
        return previous

    async def retrieve(self, request: Request) -> Response:
        self.host.authorize(request)
        faults, key = self.host.faults(request)
        stored = self.store.get(request.path_params["response_id"])
        self.host.fail_if_asked(faults, key)
        if request.query_params.get("stream", "").lower() != "true":
            return _json(stored.builder.snapshot())
        if not stored.background:
            raise APIError(
                400,
                "Only responses created with background=true can be streamed again.",
                param="stream",
            )
        after = _cursor(request)
        return await self.host.stream(request, stored.follow(after), faults, responses_api=True)

    async def cancel(self, request: Request) -> Response:
        self.host.authorize(request)
        stored = self.store.get(request.path_params["response_id"])
        if not stored.background:
            raise APIError(
                400, "Only responses created with background=true can be cancelled.", param=None
            )
        status = stored.builder.status
        if stored.builder.finished and status != "cancelled":
            raise APIError(400, f"Cannot cancel a response whose status is '{status}'.")
        stored.cancel("The response was cancelled by a request to its cancel endpoint.")
        return _json(stored.builder.snapshot())

    async def input_items(self, request: Request) -> Response:
        """``GET /v1/responses/{id}/input_items``: the items the response was made from
        (an earlier response's, when it continued one), a page at a time."""
        self.host.authorize(request)
        stored = self.store.get(request.path_params["response_id"])
        return _json(page(stored.input_items, request.query_params))

    async def delete(self, request: Request) -> Response:
        """``DELETE /v1/responses/{id}``; one still generating stops first."""
        self.host.authorize(request)
        response_id = request.path_params["response_id"]
        self.store.delete(response_id)
        return _json({"id": response_id, "object": "response.deleted", "deleted": True})
