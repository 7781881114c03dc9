"""The drop-in's :class:`~deltastream.engine._protocol.Face`: openai's types out.

Each event's bytes are validated into openai's own model by pydantic-core (a few
microseconds, against openai's own object building at many times that). An event that
does not fit openai's schema (real servers send such) is built the way openai builds
every event, leniently, through the client's ``_process_response_data``: it still
arrives, never dropped and never an exception, and as openai hands it over (a null
``delta`` stays None, content sent as a list of parts stays that list: the engine's
accumulator copes with both). Snapshots and partial results are built from the engine's
accumulator on demand, in openai's types.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, cast, get_args

import httpx2
import msgspec
import openai
import pydantic
from openai._models import construct_type  # openai's lenient builder (see the README)
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_output_item import ResponseOutputItem

from ..engine._accumulate import ExtrasChatAccumulator
from ..engine._decode import EventDecodeError, InBandError, content_parts, parse_json
from ..engine._protocol import StreamCore
from ._errors import translate

__all__ = ["ChatFace", "ResponsesFace", "text_of"]


def _validator(type_: Any) -> Any:
    """pydantic-core's validator for ``type_``, built now (openai's models defer it).
    Called directly, it skips TypeAdapter's per-call checks (0.2 µs of about 3).

    The faces call it in strict mode, which costs the same: what it refuses, openai's
    lenient building (``_lenient``) keeps as sent, where lax mode would convert it (a
    float ``created`` to an int, an index ``"0"`` to 0). No recorded provider's event
    is refused in strict mode and taken in lax mode."""
    adapter = pydantic.TypeAdapter[Any](type_)
    adapter.rebuild(force=True)
    return adapter.validator


_chunk = _validator(ChatCompletionChunk)
# openai marks its event union with its own discriminator annotation; pydantic needs
# its own to pick the member by "type" in one step.
_members: Any = functools.reduce(operator.or_, get_args(get_args(ResponseStreamEvent)[0]))
_event = pydantic.TypeAdapter[Any](
    Annotated[_members, pydantic.Field(discriminator="type")]
).validator
# Fields the engine's message has that openai's does not: sent only by some servers,
# kept (as openai keeps unknown fields) when present, not added as None when absent.
_EXTRA_MESSAGE_FIELDS = ("reasoning_content", "reasoning", "thinking")


class _Face:
    """What both drop-in faces share: the client that builds lenient objects, and
    errors that carry openai's snapshot."""

    cast_to: Any
    decodes: bool
    hands_failures = False

    def __init__(self, client: openai.OpenAI | openai.AsyncOpenAI, response: httpx2.Response):
        self._client = client
        self._response = response

    def _lenient(self, raw: bytes) -> Any:
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise EventDecodeError("stream event is not a JSON object", raw)
        return self._client._process_response_data(
            data=self._fill(data), cast_to=self.cast_to, response=self._response
        )

    def _fill(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def decode(self, raw: bytes) -> Any:
        raise NotImplementedError

    def accumulator(self) -> Any:
        raise NotImplementedError

    def present(self, item: Any) -> Any:
        raise NotImplementedError

    def snapshot(self, core: StreamCore) -> Any:
        raise NotImplementedError

    def error(self, error: BaseException, core: StreamCore) -> BaseException:
        return translate(error, self.snapshot(core), core.events_received)


class ChatFace(_Face):
    """Chat Completions: ``ChatCompletionChunk`` items, decoded once (by pydantic-core,
    from the event's bytes) and accumulated as they are; ``ChatCompletion`` snapshots."""

    cast_to = ChatCompletionChunk
    decodes = True

    def decode(self, raw: bytes) -> ChatCompletionChunk:
        try:
            chunk: ChatCompletionChunk = _chunk.validate_json(raw, strict=True)
        except pydantic.ValidationError:
            chunk = self._lenient(raw)
        extra = chunk.__pydantic_extra__
        if extra and extra.get("error"):
            raise InBandError(chunk)
        return chunk

    def accumulator(self) -> ExtrasChatAccumulator:
        return ExtrasChatAccumulator()

    def _fill(self, data: dict[str, Any]) -> dict[str, Any]:
        """What the accumulator walks, where a server left it out: a list of choices,
        each with an index and a delta. (A missing ``id``, ``created`` or ``model`` is
        None, as openai's lenient building leaves it, on the chunk and the snapshot. A
        delta sent as null stays None, as in openai.)"""
        choices = data.get("choices")
        if not isinstance(choices, list):
            choices = data["choices"] = []
        for choice in choices:
            if isinstance(choice, dict):
                choice.setdefault("index", 0)
                choice.setdefault("delta", {})
        return data

    def snapshot(self, core: StreamCore) -> ChatCompletion:
        return chat_completion(core.accumulator.snapshot())


class ResponsesFace(_Face):
    """Responses: openai's stream event types (presented from the engine's, which the
    engine's accumulator folds), ``Response`` snapshots.

    The latest whole ``response`` an event carried is kept as openai's object, so a
    snapshot has every field the server sent (instructions, tools, ...); its output
    is the accumulated one.
    """

    cast_to = ResponseStreamEvent
    decodes = False
    hands_failures = True  # as openai's stream does: see engine/_protocol.Face

    def __init__(self, client: openai.OpenAI | openai.AsyncOpenAI, response: httpx2.Response):
        super().__init__(client, response)
        self._latest: Response | None = None

    def present(self, item: Any) -> Any:
        raw: bytes = item._raw
        try:
            event = _event.validate_json(raw, strict=True)
        except pydantic.ValidationError:
            event = self._lenient(raw)
        whole = getattr(event, "response", None)
        if isinstance(whole, Response):
            self._latest = whole
        return event

    def snapshot(self, core: StreamCore) -> Response | None:
        native = core.accumulator.snapshot()
        if native is None:
            return None
        output = [construct_type(type_=ResponseOutputItem, value=_item(i)) for i in native.output]
        latest = self._latest
        if latest is None or latest.id != native.id:
            data = plain(native)
            data["output"] = output
            return cast(Response, construct_type(type_=Response, value=data))
        return latest.model_copy(update={"output": output})


def chat_completion(native: Any) -> ChatCompletion:
    """openai's ``ChatCompletion`` for the engine's, built leniently as openai builds a
    streamed snapshot (a partial one has no finish reason yet)."""
    data = plain(native)
    for choice in data["choices"]:
        message = choice["message"]
        for name in _EXTRA_MESSAGE_FIELDS:
            if message.get(name) is None:
                message.pop(name, None)
    return cast(ChatCompletion, construct_type(type_=ChatCompletion, value=data))


def text_of(content: Any) -> str:
    """The text of a delta's content as openai's chunks carry it: the string itself, or
    the text of its text parts when it is a list of typed parts (as Mistral sends);
    "" for anything else (None)."""
    if content.__class__ is str:
        return content
    return "".join(content_parts(content)[0]) if isinstance(content, list) else ""


def _item(native: Any) -> dict[str, Any]:
    """An output item as sent: the engine's item type holds the fields of every kind,
    so only those set are kept (text parts always have their annotations)."""
    data: dict[str, Any] = msgspec.to_builtins(native)
    for part in data.get("content") or ():
        if isinstance(part, dict) and part.get("type") == "output_text":
            part.setdefault("annotations", [])
    return data


def plain(value: Any) -> Any:
    """The engine's object as JSON-like data, every field included (openai's models
    need their required fields present, even when None)."""
    if isinstance(value, msgspec.Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value
