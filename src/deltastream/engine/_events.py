"""Higher-level stream events, for apps that render as they go (``stream.events()``).

:class:`EventBuilder` turns each chunk, after the accumulator has taken it, into the
events it implies. Snapshots are read from the accumulator only when asked for, so an
app that never looks at them pays nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jiter

from ._accumulate import ChatAccumulator, _ChoiceState, _join, _ToolCallState
from ._errors import OpenAIError
from .types.chat import ChatCompletionChunk, CompletionUsage

__all__ = [
    "ContentDeltaEvent",
    "EventBuilder",
    "FinishEvent",
    "RefusalDeltaEvent",
    "StreamEvent",
    "ToolArgumentsError",
    "ToolCallArgumentsDeltaEvent",
    "ToolCallArgumentsDoneEvent",
    "UsageEvent",
    "parse_arguments",
]


class ToolArgumentsError(OpenAIError):
    """A tool call's final arguments are not valid JSON (often: cut by max_tokens)."""

    def __init__(self, name: str, arguments: str, detail: str) -> None:
        super().__init__(
            f"the arguments of tool call {name!r} are not valid JSON ({detail}): "
            f"{arguments[:200]!r}"
        )
        self.name = name
        self.arguments = arguments


def parse_arguments(name: str, arguments: str) -> Any:
    """The arguments parsed strictly; :class:`ToolArgumentsError` names the tool."""
    try:
        return jiter.from_json(arguments.encode() or b"{}")
    except ValueError as exc:
        raise ToolArgumentsError(name, arguments, str(exc)) from None


@dataclass(frozen=True, slots=True)
class ContentDeltaEvent:
    index: int
    delta: str
    _state: _ChoiceState

    @property
    def snapshot(self) -> str:
        """The choice's content so far."""
        return _join(self._state.content) or ""


@dataclass(frozen=True, slots=True)
class RefusalDeltaEvent:
    index: int
    delta: str
    _state: _ChoiceState

    @property
    def snapshot(self) -> str:
        return _join(self._state.extras.refusal) or ""


@dataclass(frozen=True, slots=True)
class ToolCallArgumentsDeltaEvent:
    index: int  # the choice
    tool_index: int
    delta: str
    _call: _ToolCallState

    @property
    def name(self) -> str:
        return self._call.name or ""

    @property
    def arguments(self) -> str:
        """The argument text so far."""
        return self._call.arguments_text()

    @property
    def partial_arguments(self) -> Any:
        """The arguments so far, parsed as far as they go (jiter partial mode); parsed
        only when read."""
        text = self.arguments
        return jiter.from_json(text.encode(), partial_mode="trailing-strings") if text else {}


@dataclass(frozen=True, slots=True)
class ToolCallArgumentsDoneEvent:
    index: int
    tool_index: int
    id: str
    name: str
    arguments: str

    @property
    def parsed_arguments(self) -> Any:
        return parse_arguments(self.name, self.arguments)


@dataclass(frozen=True, slots=True)
class FinishEvent:
    index: int
    finish_reason: str


@dataclass(frozen=True, slots=True)
class UsageEvent:
    usage: CompletionUsage


StreamEvent = (
    ContentDeltaEvent
    | RefusalDeltaEvent
    | ToolCallArgumentsDeltaEvent
    | ToolCallArgumentsDoneEvent
    | FinishEvent
    | UsageEvent
)


class EventBuilder:
    def __init__(self, accumulator: ChatAccumulator) -> None:
        self._accumulator = accumulator
        self._done: set[tuple[int, int]] = set()  # (choice, tool) whose Done was sent

    def events(self, chunk: ChatCompletionChunk) -> list[StreamEvent]:
        """The events of a chunk the accumulator has already taken."""
        accumulator = self._accumulator
        out: list[StreamEvent] = []
        for choice in chunk.choices:
            state = accumulator.state(choice.index)
            delta = choice.delta
            if delta.content:
                out.append(ContentDeltaEvent(choice.index, delta.content, state))
            if delta.refusal:
                out.append(RefusalDeltaEvent(choice.index, delta.refusal, state))
            if delta.tool_calls:
                self._tool_deltas(choice.index, state, out)
            if choice.finish_reason is not None:
                out.extend(self._tools_done(choice.index, state))
                out.append(FinishEvent(choice.index, choice.finish_reason))
        if chunk.usage is not None:
            out.append(UsageEvent(chunk.usage))
        return out

    def finish(self) -> list[StreamEvent]:
        """At the end of the stream: Done for tool calls no finish_reason closed."""
        out: list[StreamEvent] = []
        for state in self._accumulator.states():
            out.extend(self._tools_done(state.index, state))
        return out

    @staticmethod
    def _tool_deltas(index: int, state: _ChoiceState, out: list[StreamEvent]) -> None:
        for tool_index, fragment in state.extras.recent_tool_deltas:
            if not fragment:
                continue  # a call announced (id, name) with no argument text yet
            call = state.extras.tool_calls[tool_index]
            out.append(ToolCallArgumentsDeltaEvent(index, tool_index, fragment, call))

    def _tools_done(self, index: int, state: _ChoiceState) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for tool_index in sorted(state.extras.tool_calls):
            if (index, tool_index) in self._done:
                continue
            self._done.add((index, tool_index))
            call = state.extras.tool_calls[tool_index]
            out.append(
                ToolCallArgumentsDoneEvent(
                    index, tool_index, call.id or "", call.name or "", call.arguments_text()
                )
            )
        return out
