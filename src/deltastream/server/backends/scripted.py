"""The scripted backend: deterministic chat replies, streamed the way OpenAI streams them.

A reply is planned once per request (:func:`plan_reply`): per choice, either text, a
tool call (``tools``) or a legacy function call (``functions``), already cut into the
pieces that become deltas, and already cut short by ``max_tokens``. The same plan gives
the streamed chunks (:func:`stream_events`) and the non-streamed completion
(:func:`completion`), so the two always agree.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from .._body import Pause
from ._compose import compose_reply, count_tokens, split_tokens, tool_result_reply
from .._pace import Pace
from ._schema import example_arguments
from .._validate import ChatRequest, Tool
from .._wire import DONE, ChunkFactory, sse_event, stable_id, usage

__all__ = ["Pace", "Reply", "completion", "plan_reply", "stream_events"]

_ARGUMENT_PIECES: Final = (4, 6, 5)


@dataclass(frozen=True, slots=True)
class ChoicePlan:
    kind: Literal["text", "tool", "function"]
    #: Content pieces for text, argument fragments for (tool or function) calls.
    pieces: tuple[str, ...]
    finish_reason: str
    tool_name: str = ""
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    request: ChatRequest
    factory: ChunkFactory
    choices: tuple[ChoicePlan, ...]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return sum(len(choice.pieces) for choice in self.choices)


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, dict)]
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _argument_pieces(arguments: str) -> list[str]:
    pieces, start, turn = [], 0, 0
    while start < len(arguments):
        size = _ARGUMENT_PIECES[turn % len(_ARGUMENT_PIECES)]
        pieces.append(arguments[start : start + size])
        start += size
        turn += 1
    return pieces


def _chosen_tool(request: ChatRequest) -> Tool | None:
    if not request.tools or request.tool_choice == "none":
        return None
    last_role = request.messages[-1].get("role")
    if last_role in ("tool", "function") and request.tool_choice == "auto":
        return None  # the tool has answered: now the assistant speaks
    for tool in request.tools:
        if tool.name == request.tool_choice:
            return tool
    return request.tools[0]


def _limit(pieces: list[str], max_tokens: int | None, done: str) -> tuple[tuple[str, ...], str]:
    if max_tokens is not None and len(pieces) > max_tokens:
        return tuple(pieces[:max_tokens]), "length"
    return tuple(pieces), done


def plan_reply(request: ChatRequest, fingerprint: bytes, *, created: int | None = None) -> Reply:
    """Everything the reply will say; ``fingerprint`` (the raw request) seeds the ids."""
    prompt = _last_user_text(request)
    variant = request.seed if request.seed is not None else zlib.crc32(prompt.encode())
    tool = _chosen_tool(request)
    choices = []
    for index in range(request.n):
        if tool is not None:
            arguments = json.dumps(example_arguments(tool.parameters, prompt), ensure_ascii=False)
            pieces, finish = _limit(_argument_pieces(arguments), request.max_tokens, "tool_calls")
            kind: Literal["tool", "function"] = "function" if request.legacy_functions else "tool"
            if kind == "function" and finish != "length":
                finish = "function_call"
            call_id = "call_" + stable_id("", fingerprint + b"#%d" % index, 24)
            choices.append(ChoicePlan(kind, pieces, finish, tool.name, call_id))
            continue
        last = request.messages[-1]
        if last.get("role") in ("tool", "function"):
            text = tool_result_reply(_text_of(last.get("content")))
        else:
            text = compose_reply(prompt, variant + index)
        pieces, finish = _limit(split_tokens(text), request.max_tokens, "stop")
        choices.append(ChoicePlan("text", pieces, finish))
    prompt_tokens = sum(4 + count_tokens(_text_of(m.get("content"))) for m in request.messages)
    factory = ChunkFactory(
        stable_id("chatcmpl-", fingerprint),
        int(time.time()) if created is None else created,
        request.model,
    )
    return Reply(request, factory, tuple(choices), prompt_tokens)


def _deltas(choice: ChoicePlan) -> Iterator[dict[str, object]]:
    if choice.kind == "text":
        yield {"role": "assistant", "content": "", "refusal": None}
        for piece in choice.pieces:
            yield {"content": piece}
    elif choice.kind == "tool":
        yield {"role": "assistant", "content": None}
        call = {"name": choice.tool_name, "arguments": ""}
        yield {
            "tool_calls": [{"index": 0, "id": choice.call_id, "type": "function", "function": call}]
        }
        for piece in choice.pieces:
            yield {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
    else:
        call = {"name": choice.tool_name, "arguments": ""}
        yield {"role": "assistant", "content": None, "function_call": call}
        for piece in choice.pieces:
            yield {"function_call": {"arguments": piece}}


def _interleaved(reply: Reply) -> Iterator[bytes]:
    """Chunks of all choices, round robin, each choice ending with its finish chunk."""
    factory = reply.factory
    streams = [_deltas(choice) for choice in reply.choices]
    active = list(range(len(streams)))
    while active:
        for index in list(active):
            delta = next(streams[index], None)
            if delta is None:
                active.remove(index)
                finish = reply.choices[index].finish_reason
                yield sse_event(factory.chunk(index, {}, finish))
            else:
                yield sse_event(factory.chunk(index, delta))
    if reply.request.include_usage:
        yield sse_event(factory.usage_chunk(usage(reply.prompt_tokens, reply.completion_tokens)))
    yield DONE


async def stream_events(reply: Reply, pace: Pace) -> AsyncIterator[bytes | Pause]:
    first = True
    for event in _interleaved(reply):
        delay = pace.first() if first else pace.between()
        if delay:
            yield Pause(delay)
        first = False
        yield event


def _message(choice: ChoicePlan) -> dict[str, object]:
    text = "".join(choice.pieces)
    if choice.kind == "text":
        return {"role": "assistant", "content": text, "refusal": None}
    call = {"name": choice.tool_name, "arguments": text}
    if choice.kind == "function":
        return {"role": "assistant", "content": None, "refusal": None, "function_call": call}
    tool_call = {"id": choice.call_id, "type": "function", "function": call}
    return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [tool_call]}


def completion(reply: Reply) -> dict[str, object]:
    """The non-streamed ``chat.completion`` for the same reply."""
    choices: list[dict[str, object]] = [
        {"index": i, "message": _message(c), "logprobs": None, "finish_reason": c.finish_reason}
        for i, c in enumerate(reply.choices)
    ]
    return reply.factory.completion(choices, usage(reply.prompt_tokens, reply.completion_tokens))


def completion_delay(reply: Reply, pace: Pace) -> float:
    """How long a non-streamed reply takes at ``pace``."""
    events = sum(len(choice.pieces) + 2 for choice in reply.choices)
    return pace.first() + pace.between() * events
