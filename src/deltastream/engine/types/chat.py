"""Chat Completions objects: the streamed ``chat.completion.chunk`` and the final
``chat.completion``. Field names follow the official SDK.

Everything a server might leave out or send as null has a default, so the same types
decode OpenAI, vLLM, llama.cpp, Ollama, Mistral, Groq and the rest. Reasoning text goes
by three names across providers (``reasoning_content``, ``reasoning``, ``thinking``);
each is kept as sent.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._base import BaseModel, RawModel

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageToolCall",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaFunctionCall",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChoiceLogprobs",
    "ChunkChoice",
    "CompletionTokensDetails",
    "CompletionUsage",
    "Function",
    "FunctionCall",
    "PromptTokensDetails",
    "TopLogprob",
    "TokenLogprob",
]


class PromptTokensDetails(BaseModel, kw_only=True):
    cached_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionTokensDetails(BaseModel, kw_only=True):
    reasoning_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class CompletionUsage(BaseModel, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class TopLogprob(BaseModel, kw_only=True):
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None


class TokenLogprob(BaseModel, kw_only=True):
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(BaseModel, kw_only=True):
    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


# -- streamed chunks -------------------------------------------------------------------


class ChoiceDeltaFunctionCall(BaseModel, kw_only=True):
    """The legacy ``function_call`` delta (answers the legacy ``functions=`` parameter)."""

    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCallFunction(BaseModel, kw_only=True):
    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(BaseModel, kw_only=True):
    index: int | None = None  # some servers (Mistral) leave it out
    id: str | None = None
    type: str | None = None
    function: ChoiceDeltaToolCallFunction | None = None


class ChoiceDelta(BaseModel, kw_only=True):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None
    function_call: ChoiceDeltaFunctionCall | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    thinking: str | None = None
    audio: dict[str, Any] | None = None
    annotations: list[Any] | None = None


class ChunkChoice(BaseModel, kw_only=True):
    index: int = 0
    delta: ChoiceDelta = msgspec.field(default_factory=ChoiceDelta)
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletionChunk(RawModel, kw_only=True):
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    choices: list[ChunkChoice] = []
    system_fingerprint: str | None = None
    service_tier: str | None = None
    usage: CompletionUsage | None = None
    # A top-level "error" key, caught by the same decode instead of a scan of every
    # event's bytes; the stream raises on it, so a chunk handed to a user has None here.
    _error: Any = msgspec.field(default=None, name="error")


# -- the whole completion --------------------------------------------------------------


class FunctionCall(BaseModel, kw_only=True):
    name: str = ""
    arguments: str = ""


class Function(BaseModel, kw_only=True):
    name: str = ""
    arguments: str = ""

    def parse_arguments(self) -> Any:
        """The arguments as JSON; ``ToolArgumentsError`` (naming the tool) if they are
        not valid, e.g. cut short by ``finish_reason: "length"``."""
        from .._events import parse_arguments

        return parse_arguments(self.name, self.arguments)


class ChatCompletionMessageToolCall(BaseModel, kw_only=True):
    id: str = ""
    type: str = "function"
    function: Function = msgspec.field(default_factory=Function)


class ChatCompletionMessage(BaseModel, kw_only=True):
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None
    function_call: FunctionCall | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    thinking: str | None = None
    audio: dict[str, Any] | None = None
    annotations: list[Any] | None = None


class Choice(BaseModel, kw_only=True):
    index: int = 0
    message: ChatCompletionMessage = msgspec.field(default_factory=ChatCompletionMessage)
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletion(RawModel, kw_only=True):
    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice] = []
    system_fingerprint: str | None = None
    service_tier: str | None = None
    usage: CompletionUsage | None = None
