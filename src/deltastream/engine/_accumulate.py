"""Accumulators: fold streamed chunks into the final result. Pure and linear-time.

Each delta is appended to a list and joined only when a snapshot is asked for, so the
cost per chunk stays flat however long the stream gets (the official SDK re-dumps and
re-parses its whole snapshot on every chunk).

Merging rules, as the wire does it across providers:

- choices are keyed by ``index``; tool calls by their ``index`` within the choice. A
  tool call without ``index`` (Mistral) starts a new call when it brings an ``id`` not
  seen last, and continues the last call otherwise.
- ``id``, ``type`` and ``name`` of a tool call come from the first delta that has them;
  ``arguments`` are concatenated.
- ``role`` is the first non-null role; ``finish_reason`` the last non-null one;
  ``usage`` the last non-null top-level usage (it may come in a chunk with no choices).
- ``logprobs`` token lists are concatenated.
- content sent as a list of typed parts (Mistral's; only openai's chunks keep it as
  sent): the text of its text parts is content, that of its thinking parts ``thinking``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._memo import Memo
from ._decode import content_parts
from ._responses_accumulate import ResponseAccumulator
from .types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageToolCall,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceLogprobs,
    CompletionUsage,
    Function,
    FunctionCall,
    TokenLogprob,
)

__all__ = ["ChatAccumulator", "ExtrasChatAccumulator", "ResponseAccumulator"]

_BLOCK = 256  # deltas joined into one string as they come: memory stays near the text's


class Text:
    """Text that arrives in pieces. The pieces are joined a block at a time, so a
    stream of a million one-character deltas holds about a million characters, not a
    million string objects; and once more when the whole is read."""

    __slots__ = ("blocks", "recent")

    def __init__(self, first: str) -> None:
        self.blocks: list[str] | None = None  # made at the first compact: most texts stay short
        self.recent: list[str] = [first]

    def add(self, piece: str) -> None:
        recent = self.recent
        recent.append(piece)
        if len(recent) >= _BLOCK:
            self.compact()

    def compact(self) -> None:
        block = "".join(self.recent)
        if self.blocks is None:
            self.blocks = [block]
        else:
            self.blocks.append(block)
        self.recent.clear()

    def value(self) -> str:
        if self.recent or self.blocks is None:
            self.compact()
        blocks = self.blocks
        assert blocks is not None
        if len(blocks) > 1:
            blocks[:] = ["".join(blocks)]  # read again later: join once, not every time
        return blocks[0]


class _ToolCallState:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: Text | None = None

    def arguments_text(self) -> str:
        return "" if self.arguments is None else self.arguments.value()

    def build(self) -> ChatCompletionMessageToolCall:
        return ChatCompletionMessageToolCall(
            id=self.id or "",
            type=self.type or "function",
            function=Function(name=self.name or "", arguments=self.arguments_text()),
        )


# Strings every stream repeats (a model's name, a role), one copy for all: an open
# stream's accumulator would otherwise hold its first chunk's copies after the chunk
# has gone. Bounded, for the odd server that names a new model every time.
_SHARED: Memo[str, str] = Memo(limit=256)


def _shared(text: str) -> str:
    """``text``, or an equal string seen before (anything but a string as it is: a
    chunk off openai's schema may send a list where the model's name belongs)."""
    if text.__class__ is not str:
        return text
    known = _SHARED.get(text)
    return _SHARED.keep(text, text) if known is None else known


class _Extras:
    """What a choice may carry besides its role, content and finish reason: refusals,
    reasoning, tool and function calls, logprobs. Most choices carry none of it."""

    __slots__ = (
        "function_args",
        "function_name",
        "logprobs_content",
        "logprobs_refusal",
        "reasoning",
        "reasoning_content",
        "recent_tool_deltas",
        "refusal",
        "thinking",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.refusal: Text | None = None
        self.reasoning_content: Text | None = None
        self.reasoning: Text | None = None
        self.thinking: Text | None = None
        self.tool_calls: dict[int, _ToolCallState] = {}
        # (tool index, argument fragment) of the last delta that carried tool calls,
        # with indexes as resolved here (some servers send none).
        self.recent_tool_deltas: Sequence[tuple[int, str]] = ()
        self.function_name: str | None = None
        self.function_args: Text | None = None
        self.logprobs_content: list[TokenLogprob] | None = None
        self.logprobs_refusal: list[TokenLogprob] | None = None

    def add(self, delta: ChoiceDelta) -> None:
        # Only text is joined, and only objects are read: a delta built leniently (the
        # drop-in's, for a chunk off openai's schema) holds whatever was sent, and its
        # chunk goes out as sent. The engine's own deltas always pass these tests.
        refusal = delta.refusal
        if isinstance(refusal, str):
            self.refusal = _append(self.refusal, refusal)
        reasoning_content, reasoning, thinking = _provider_fields(delta)
        if isinstance(reasoning_content, str):
            self.reasoning_content = _append(self.reasoning_content, reasoning_content)
        if isinstance(reasoning, str):
            self.reasoning = _append(self.reasoning, reasoning)
        if isinstance(thinking, str):
            self.thinking = _append(self.thinking, thinking)
        calls = delta.tool_calls
        if calls and isinstance(calls, list):
            self.recent_tool_deltas = [self._add_tool_call(call) for call in calls]
        function = delta.function_call
        if function is not None:
            name = getattr(function, "name", None)
            if name and isinstance(name, str):
                self.function_name = (self.function_name or "") + name
            arguments = getattr(function, "arguments", None)
            if isinstance(arguments, str):
                self.function_args = _append(self.function_args, arguments)

    def _add_tool_call(self, call: ChoiceDeltaToolCall) -> tuple[int, str]:
        calls = self.tool_calls
        index, id = getattr(call, "index", None), getattr(call, "id", None)
        if index.__class__ is not int:  # none sent (or not a number: see add)
            last = max(calls) if calls else -1
            if last < 0 or (id is not None and id != calls[last].id):
                index = last + 1
            else:
                index = last
        state = calls.get(index)
        if state is None:
            state = calls[index] = _ToolCallState()
        if id and state.id is None:
            state.id = id
        kind = getattr(call, "type", None)
        if kind and state.type is None:
            state.type = kind
        function = getattr(call, "function", None)
        if function is not None:
            name = getattr(function, "name", None)
            if name and state.name is None:
                state.name = name
            arguments = getattr(function, "arguments", None)
            if arguments and isinstance(arguments, str):
                if state.arguments is None:
                    state.arguments = Text(arguments)
                else:
                    state.arguments.add(arguments)
                return index, arguments
        return index, ""

    def add_logprobs(self, logprobs: ChoiceLogprobs) -> None:
        # An empty list is kept as sent (the official SDK keeps it too); null is not,
        # nor anything else where a list belongs (see add).
        content = getattr(logprobs, "content", None)
        if isinstance(content, list):
            if self.logprobs_content is None:
                self.logprobs_content = []
            self.logprobs_content.extend(content)
        refusal = getattr(logprobs, "refusal", None)
        if isinstance(refusal, list):
            if self.logprobs_refusal is None:
                self.logprobs_refusal = []
            self.logprobs_refusal.extend(refusal)


_NO_EXTRAS = _Extras()  # never written to: see _ChoiceState.__init__
_NOT_SENT = (None, None, None)


def _provider_fields(delta: ChoiceDelta) -> tuple[Any, Any, Any]:
    """A delta's ``reasoning_content``, ``reasoning`` and ``thinking``: fields of the
    engine's deltas; of openai's (pydantic) ones, extras present only when sent, read
    from the extras themselves (``getattr`` of a field not sent raises and catches an
    AttributeError inside pydantic: about 2 µs, three times per reasoning token)."""
    if delta.__class__ is ChoiceDelta:
        return delta.reasoning_content, delta.reasoning, delta.thinking
    extra: dict[str, Any] | None = getattr(delta, "__pydantic_extra__", None)
    if not extra:
        return _NOT_SENT
    return extra.get("reasoning_content"), extra.get("reasoning"), extra.get("thinking")


class _ChoiceState:
    __slots__ = ("content", "extras", "finish_reason", "index", "role")

    def __init__(self, index: int) -> None:
        self.index = index
        self.role: str | None = None
        self.content: Text | None = None
        self.finish_reason: str | None = None
        # Shared and empty until the choice carries more than text (an open stream
        # should not hold ten empty fields per choice): read it, write through
        # _own_extras.
        self.extras = _NO_EXTRAS

    def _own_extras(self) -> _Extras:
        extras = self.extras
        if extras is _NO_EXTRAS:
            extras = self.extras = _Extras()
        return extras

    def add_rare(self, delta: ChoiceDelta) -> None:
        """Everything but plain content: called only when a delta carries more."""
        if delta.role is not None and self.role is None:
            self.role = _shared(delta.role)
        if (
            delta.refusal is not None
            or delta.tool_calls
            or delta.function_call is not None
            or _provider_fields(delta) != _NOT_SENT
        ):
            self._own_extras().add(delta)

    def add_logprobs(self, logprobs: ChoiceLogprobs) -> None:
        self._own_extras().add_logprobs(logprobs)

    def content_text(self) -> str | None:
        """The content so far. openai's chunks keep content sent as a list of typed
        parts (Mistral's) as it came, so a piece may be such a list: it is read here,
        when the pieces are joined, not on every delta."""
        text = self.content
        if text is None:
            return None
        try:
            return text.value()
        except TypeError:  # a piece that is not a string
            self._read_parts()
            return _join(self.content)

    def compact_content(self) -> None:
        """Join the content's recent pieces (see :meth:`content_text`)."""
        text = self.content
        assert text is not None
        try:
            text.compact()
        except TypeError:  # a piece that is not a string
            self._read_parts()
            if self.content is not None and text.recent:
                text.compact()  # else the pieces pile up, read again at every delta

    def _read_parts(self) -> None:
        """The content's recent pieces that are not strings, replaced by the text of
        their text parts; the text of their thinking parts goes to ``thinking`` (after
        any thinking sent under its own field meanwhile: no server sends both)."""
        text = self.content
        assert text is not None
        recent: list[Any] = text.recent
        pieces: list[str] = []
        for piece in recent:
            if piece.__class__ is str:
                pieces.append(piece)
            elif isinstance(piece, list):
                said, thought = content_parts(piece)
                pieces.extend(said)
                if thought:
                    extras = self._own_extras()
                    extras.thinking = _append(extras.thinking, "".join(thought))
        recent[:] = pieces
        if not pieces and text.blocks is None:
            self.content = None  # none of it was text

    def build(self) -> Choice:
        content = self.content_text()  # first: it may move thinking into the extras
        extras = self.extras
        tool_calls = [extras.tool_calls[i].build() for i in sorted(extras.tool_calls)]
        function_call = None
        if extras.function_name is not None or extras.function_args is not None:
            function_call = FunctionCall(
                name=extras.function_name or "", arguments=_join(extras.function_args) or ""
            )
        logprobs = None
        if extras.logprobs_content is not None or extras.logprobs_refusal is not None:
            logprobs = ChoiceLogprobs(
                content=extras.logprobs_content, refusal=extras.logprobs_refusal
            )
        message = ChatCompletionMessage(
            role=self.role or "assistant",
            content=content,
            refusal=_join(extras.refusal),
            tool_calls=tool_calls or None,
            function_call=function_call,
            reasoning_content=_join(extras.reasoning_content),
            reasoning=_join(extras.reasoning),
            thinking=_join(extras.thinking),
        )
        return Choice(
            index=self.index, message=message, logprobs=logprobs, finish_reason=self.finish_reason
        )


class ChatAccumulator:
    """Feed it chunks with :meth:`add`; read :meth:`snapshot` at any time."""

    __slots__ = (
        "_first",
        "_more",
        "chunks",
        "created",
        "id",
        "model",
        "service_tier",
        "system_fingerprint",
        "usage",
    )

    def __init__(self) -> None:
        # The first choice seen (most answers have one), then the others by index
        # once a second one comes.
        self._first: _ChoiceState | None = None
        self._more: dict[int, _ChoiceState] | None = None
        self.chunks = 0
        self.id = ""
        self.model = ""
        self.created = 0
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None
        self.usage: CompletionUsage | None = None

    def add(self, chunk: ChatCompletionChunk) -> None:
        if self.chunks == 0:
            self.id, self.model, self.created = chunk.id, _shared(chunk.model), chunk.created
        self.chunks += 1
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.system_fingerprint is not None:
            self.system_fingerprint = chunk.system_fingerprint
        if chunk.service_tier is not None:
            self.service_tier = chunk.service_tier
        for choice in chunk.choices:
            state = self._first
            if state is None or state.index != choice.index:
                state = self.state(choice.index)
            delta = choice.delta
            content = delta.content
            if content is not None:
                text = state.content
                if text is None:
                    state.content = Text(content)
                else:
                    recent = text.recent  # Text.add, inlined: this runs for every token
                    recent.append(content)
                    if len(recent) >= _BLOCK:
                        text.compact()
                # Most deltas carry content and nothing else but a role: skip the rest.
                if (
                    delta.tool_calls is None
                    and delta.refusal is None
                    and delta.reasoning_content is None
                    and delta.reasoning is None
                    and delta.thinking is None
                    and delta.function_call is None
                ):
                    if delta.role is not None and state.role is None:
                        state.role = _shared(delta.role)
                else:
                    state.add_rare(delta)
            else:
                state.add_rare(delta)
            if choice.finish_reason is not None:
                state.finish_reason = choice.finish_reason
            if choice.logprobs is not None:
                state.add_logprobs(choice.logprobs)

    def snapshot(self) -> ChatCompletion:
        """The completion as accumulated so far."""
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[state.build() for state in self.states()],
            system_fingerprint=self.system_fingerprint,
            service_tier=self.service_tier,
            usage=self.usage,
        )

    def text(self, index: int = 0) -> str:
        """The content text of one choice so far."""
        state = self.find(index)
        return state.content_text() or "" if state is not None else ""

    def state(self, index: int) -> _ChoiceState:
        """The state of choice ``index``, made if it is new."""
        first = self._first
        if first is None:
            first = self._first = _ChoiceState(index)
        if first.index == index:
            return first
        more = self._more
        if more is None:
            more = self._more = {}
        state = more.get(index)
        if state is None:
            state = more[index] = _ChoiceState(index)
        return state

    def find(self, index: int) -> _ChoiceState | None:
        """The state of choice ``index``; None if it has not come."""
        first = self._first
        if first is not None and first.index == index:
            return first
        return None if self._more is None else self._more.get(index)

    def states(self) -> list[_ChoiceState]:
        """Every choice's state, by index."""
        if self._first is None:
            return []
        states = [self._first, *(self._more or {}).values()]
        if len(states) > 1:
            states.sort(key=_index_of)
        return states


def _index_of(state: _ChoiceState) -> int:
    return state.index


class ExtrasChatAccumulator(ChatAccumulator):
    """:class:`ChatAccumulator` for pydantic chunks (openai's), whose deltas have the
    provider fields (``reasoning_content``, ...) only when a server sent them, among
    their extras, and which keep shapes openai's schema does not describe as sent: a
    null delta is None, and content may be a list of typed parts. ``add`` is the
    engine's again but for the test that sends a delta down the fast path: this one
    runs for every token, so it is not a call to a shared helper."""

    __slots__ = ()

    def add(self, chunk: Any) -> None:
        # pydantic keeps a model's fields in its __dict__, where a lookup costs half
        # what the attribute does (and every field is there: a missing one would fail
        # as an attribute too).
        fields = chunk.__dict__
        if self.chunks == 0:
            self.id, self.model, self.created = chunk.id, _shared(chunk.model), chunk.created
        self.chunks += 1
        if fields["usage"] is not None:
            self.usage = fields["usage"]
        if fields["system_fingerprint"] is not None:
            self.system_fingerprint = fields["system_fingerprint"]
        if fields["service_tier"] is not None:
            self.service_tier = fields["service_tier"]
        for choice in fields["choices"]:
            try:
                facts = choice.__dict__
            except AttributeError:  # a choice that is no object: handed over as sent
                continue
            index = facts["index"]
            state = self._first
            if state is None or state.index != index:
                if index.__class__ is not int:
                    continue  # an index that is no number (see add): nothing to add to
                state = self.state(index)
            delta = facts["delta"]
            try:
                sent = delta.__dict__
            except AttributeError:  # "delta": null, handed over as None: nothing to add
                pass
            else:
                content = sent["content"]
                if content is not None:
                    text = state.content
                    if text is None:
                        state.content = Text(content)
                    else:
                        recent = text.recent
                        recent.append(content)  # a list of parts too: see content_text
                        if len(recent) >= _BLOCK:
                            state.compact_content()
                    if (
                        sent["tool_calls"] is None
                        and sent["refusal"] is None
                        and sent["function_call"] is None
                        and not delta.__pydantic_extra__
                    ):
                        role = sent["role"]
                        if role is not None and state.role is None:
                            state.role = _shared(role)
                    else:
                        state.add_rare(delta)
                else:
                    state.add_rare(delta)
            if facts["finish_reason"] is not None:
                state.finish_reason = facts["finish_reason"]
            if facts["logprobs"] is not None:
                state.add_logprobs(facts["logprobs"])


def _append(text: Text | None, value: str) -> Text:
    if text is None:
        return Text(value)
    text.add(value)
    return text


def _join(text: Text | None) -> str | None:
    return None if text is None else text.value()
