"""Chat Completions from pieces: the streamed chunks, or the whole ``chat.completion``.

Each choice opens with its role delta (text: ``content: ""``; a call: ``content: null``),
then its content or call deltas, then a delta-less chunk with its finish reason; the
usage chunk (``stream_options.include_usage``) and ``[DONE]`` come last. The legacy
``functions`` parameter is answered with ``delta.function_call`` and finish reason
``function_call``.

Mirroring: when ``tools`` offered exactly one function, a call is also carried in the
legacy ``function_call`` field of the same deltas (and of the message), beside
``tool_calls``, as some OpenAI-compatible servers do. Clients that read ``tool_calls``
see OpenAI's stream unchanged; code written for ``function_call`` (the streaming guide's
function-calling example) sees the call too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ._body import BodyItem, Pause
from ._errors import APIError
from ._pieces import Arguments, Call, Finish, Piece, Text, TokenLogprob, Usage
from ._validate import ChatRequest
from ._wire import DONE, ChunkFactory, error_event, sse_event, usage

__all__ = ["ChatRenderer", "chat_completion", "chat_stream", "logprob_entry"]


def logprob_entry(item: TokenLogprob) -> dict[str, object]:
    top = [
        {"token": token, "logprob": logprob, "bytes": list(raw)} for token, logprob, raw in item.top
    ]
    return {
        "token": item.token,
        "logprob": item.logprob,
        "bytes": list(item.bytes),
        "top_logprobs": top,
    }


@dataclass(slots=True)
class _Choice:
    started: bool = False
    calls: int = 0
    text: list[str] = field(default_factory=list)
    logprobs: list[dict[str, object]] = field(default_factory=list)
    #: (id, name, argument pieces) per call
    tool_calls: list[tuple[str, str, list[str]]] = field(default_factory=list)
    finish: str = "stop"


class ChatRenderer:
    """Turns pieces into chunk objects (:meth:`feed`) and keeps what they add up to."""

    def __init__(self, request: ChatRequest, factory: ChunkFactory, *, mirror: bool) -> None:
        self.request = request
        self.factory = factory
        self.legacy = request.legacy_functions
        self.mirror = mirror and not self.legacy and len(request.tools) == 1
        self.choices: dict[int, _Choice] = {}
        self.usage: Usage | None = None

    def _choice(self, index: int) -> _Choice:
        return self.choices.setdefault(index, _Choice())

    def _logprobs(self, items: tuple[TokenLogprob, ...]) -> dict[str, object] | None:
        if not self.request.sampling.logprobs:
            return None
        return {"content": [logprob_entry(item) for item in items], "refusal": None}

    def _chunk(
        self, index: int, delta: dict[str, object], logprobs: dict[str, object] | None = None
    ) -> dict[str, object]:
        chunk = self.factory.chunk(index, delta)
        if logprobs is not None:
            choices = chunk["choices"]
            assert isinstance(choices, list)
            choices[0]["logprobs"] = logprobs
        return chunk

    def feed(self, piece: Piece) -> list[dict[str, object]]:
        if isinstance(piece, Usage):
            self.usage = piece
            return []
        state = self._choice(piece.choice)
        index = piece.choice
        out: list[dict[str, object]] = []
        if isinstance(piece, Text):
            if not state.started:
                state.started = True
                role: dict[str, object] = {"role": "assistant", "content": "", "refusal": None}
                out.append(self._chunk(index, role, self._logprobs(())))
            if piece.text:
                state.text.append(piece.text)
                entries = self._logprobs(piece.logprobs)
                if entries is not None:
                    state.logprobs.extend(entries["content"])  # type: ignore[arg-type]
                out.append(self._chunk(index, {"content": piece.text}, entries))
        elif isinstance(piece, Call):
            state.tool_calls.append((piece.call_id, piece.name, []))
            call = {"name": piece.name, "arguments": ""}
            if self.legacy:
                delta: dict[str, object] = {"function_call": call}
                if not state.started:
                    delta = {"role": "assistant", "content": None, **delta}
                out.append(self._chunk(index, delta))
            else:
                if not state.started:
                    out.append(self._chunk(index, {"role": "assistant", "content": None}))
                entry = {"index": state.calls, "id": piece.call_id, "type": "function"}
                delta = {"tool_calls": [{**entry, "function": call}]}
                if self.mirror:
                    delta["function_call"] = dict(call)
                out.append(self._chunk(index, delta))
            state.started = True
            state.calls += 1
        elif isinstance(piece, Arguments):
            state.tool_calls[-1][2].append(piece.text)
            fragment = {"arguments": piece.text}
            if self.legacy:
                delta = {"function_call": fragment}
            else:
                delta = {"tool_calls": [{"index": state.calls - 1, "function": fragment}]}
                if self.mirror:
                    delta["function_call"] = dict(fragment)
            out.append(self._chunk(index, delta))
        else:
            state.finish = self._reason(piece)
            out.append(self.factory.chunk(index, {}, state.finish))
        return out

    def _reason(self, piece: Finish) -> str:
        if piece.reason == "tool_calls" and self.legacy:
            return "function_call"
        return piece.reason

    def usage_object(self) -> dict[str, object]:
        counts = self.usage or Usage(0, 0)
        return usage(counts.prompt_tokens, counts.completion_tokens)

    def message(self, index: int) -> dict[str, object]:
        state = self._choice(index)
        if not state.tool_calls:
            return {"role": "assistant", "content": "".join(state.text), "refusal": None}
        message: dict[str, object] = {"role": "assistant", "content": None, "refusal": None}
        calls = [
            {"name": name, "arguments": "".join(pieces)} for _, name, pieces in state.tool_calls
        ]
        if self.legacy:
            message["function_call"] = calls[0]
            return message
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": call}
            for (call_id, _, _), call in zip(state.tool_calls, calls, strict=True)
        ]
        if self.mirror:
            message["function_call"] = calls[0]
        return message

    def completion(self) -> dict[str, object]:
        choices: list[dict[str, object]] = []
        for index in sorted(self.choices):
            state = self.choices[index]
            logprobs = (
                {"content": state.logprobs, "refusal": None}
                if self.request.sampling.logprobs and not state.tool_calls
                else None
            )
            choices.append(
                {
                    "index": index,
                    "message": self.message(index),
                    "logprobs": logprobs,
                    "finish_reason": state.finish,
                }
            )
        return self.factory.completion(choices, self.usage_object())


async def chat_stream(
    renderer: ChatRenderer, pieces: AsyncIterator[Piece | Pause]
) -> AsyncIterator[BodyItem]:
    """The SSE body: chunk events (and pauses), the usage chunk if asked for, ``[DONE]``.

    A generation that fails midway ends the body with an in-band error event.
    """
    try:
        async for piece in pieces:
            if isinstance(piece, Pause):
                yield piece
                continue
            for chunk in renderer.feed(piece):
                yield sse_event(chunk)
    except Exception as exc:  # the model failed: say so in the stream, as OpenAI does
        yield error_event(f"The local model failed: {exc}", code="server_error")
        return
    if renderer.request.include_usage:
        yield sse_event(renderer.factory.usage_chunk(renderer.usage_object()))
    yield DONE


async def chat_completion(
    renderer: ChatRenderer, pieces: AsyncIterator[Piece | Pause]
) -> dict[str, object]:
    """The whole ``chat.completion``, after the generation's pace (its pauses) has passed."""
    try:
        async for piece in pieces:
            if isinstance(piece, Pause):
                await asyncio.sleep(piece.seconds)
            else:
                renderer.feed(piece)
    except Exception as exc:  # the model failed: an OpenAI-shaped 500, not a bare one
        raise APIError(500, f"The local model failed: {exc}") from exc
    return renderer.completion()
