"""The scripted backend: deterministic replies, as pieces (:mod:`.._pieces`).

A reply is planned once per request (:func:`plan_reply`): per choice, either text or a
call (``tools``, or the legacy ``functions``), already cut into the pieces that become
deltas, cut at the first ``stop`` string and cut short by ``max_tokens``. Text follows
``response_format`` (JSON built from the schema). :func:`pieces` hands the plan out,
paced, with choices interleaved; log-probabilities, when asked for, are made up but
stable (the same reply, the same numbers).
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from .._body import Pause
from .._pace import Pace
from .._pieces import Arguments, Call, Finish, FinishReason, Piece, Text, TokenLogprob, Usage
from .._validate import ChatRequest, Tool, message_text
from .._wire import stable_id
from ._compose import compose_reply, count_tokens, split_tokens, tool_result_reply
from ._schema import example_arguments

__all__ = ["Reply", "pieces", "plan_reply"]

_ARGUMENT_PIECES: Final = (4, 6, 5)
#: Stand-in alternatives for made-up top_logprobs.
_ALTERNATIVES: Final = (" the", " a", ",", ".", " and", " to", " of", " it", " is", "!")


@dataclass(frozen=True, slots=True)
class ChoicePlan:
    kind: Literal["text", "call"]
    #: Content pieces for text, argument fragments for calls.
    pieces: tuple[str, ...]
    finish_reason: FinishReason
    tool_name: str = ""
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    request: ChatRequest
    reply_id: str
    created: int
    choices: tuple[ChoicePlan, ...]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return sum(len(choice.pieces) for choice in self.choices)


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
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


def _limit(
    pieces: list[str], max_tokens: int | None, done: FinishReason
) -> tuple[tuple[str, ...], FinishReason]:
    if max_tokens is not None and len(pieces) > max_tokens:
        return tuple(pieces[:max_tokens]), "length"
    return tuple(pieces), done


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    ends = [text.find(stop) for stop in stops]
    found = [end for end in ends if end >= 0]
    return text[: min(found)] if found else text


def _text_reply(request: ChatRequest, prompt: str, variant: int) -> str:
    last = request.messages[-1]
    if last.get("role") in ("tool", "function"):
        text = tool_result_reply(message_text(last.get("content")))
    else:
        text = compose_reply(prompt, variant)
    form = request.output_format
    if form is None:
        return text
    if form.kind == "json_schema" and form.schema is not None:
        return json.dumps(example_arguments(form.schema, prompt), ensure_ascii=False)
    return json.dumps({"reply": text}, ensure_ascii=False)


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
            call_id = "call_" + stable_id("", fingerprint + b"#%d" % index, 24)
            choices.append(ChoicePlan("call", pieces, finish, tool.name, call_id))
            continue
        text = _text_reply(request, prompt, variant + index)
        cut = _cut_at_stop(text, request.sampling.stop)
        pieces, finish = _limit(split_tokens(cut), request.max_tokens, "stop")
        choices.append(ChoicePlan("text", pieces, finish))
    prompt_tokens = sum(4 + count_tokens(message_text(m.get("content"))) for m in request.messages)
    return Reply(
        request,
        stable_id("chatcmpl-", fingerprint),
        int(time.time()) if created is None else created,
        tuple(choices),
        prompt_tokens,
    )


def _logprob(token: str, position: int, top: int) -> TokenLogprob:
    """A made-up but stable log-probability for ``token``, and ``top`` alternatives."""
    logprob = -(((zlib.crc32(f"{position}:{token}".encode()) % 2000) / 1000) ** 2)
    best = [(token, logprob)]
    others = [alt for alt in _ALTERNATIVES if alt != token]
    for rank, alternative in enumerate(others[: max(top - 1, 0)], start=1):
        best.append((alternative, logprob - rank - math.log(rank + 1)))
    entries = tuple((text, value, tuple(text.encode())) for text, value in best[:top])
    return TokenLogprob(token, logprob, tuple(token.encode()), entries)


def _choice_pieces(reply: Reply, index: int) -> Iterator[Piece]:
    choice = reply.choices[index]
    sampling = reply.request.sampling
    if choice.kind == "text":
        yield Text(index, "")
        for position, piece in enumerate(choice.pieces):
            logprobs = (
                (_logprob(piece, position, sampling.top_logprobs),) if sampling.logprobs else ()
            )
            yield Text(index, piece, logprobs)
    else:
        yield Call(index, choice.call_id, choice.tool_name)
        for piece in choice.pieces:
            yield Arguments(index, piece)
    yield Finish(index, choice.finish_reason)


def _interleaved(reply: Reply) -> Iterator[Piece]:
    """Pieces of all choices, round robin, then the usage."""
    streams = [_choice_pieces(reply, index) for index in range(len(reply.choices))]
    active = list(range(len(streams)))
    while active:
        for index in list(active):
            piece = next(streams[index], None)
            if piece is None:
                active.remove(index)
            else:
                yield piece
    yield Usage(reply.prompt_tokens, reply.completion_tokens)


async def pieces(reply: Reply, pace: Pace) -> AsyncIterator[Piece | Pause]:
    first = True
    for piece in _interleaved(reply):
        if not isinstance(piece, Usage):
            delay = pace.first() if first else pace.between()
            if delay:
                yield Pause(delay)
            first = False
        yield piece
