"""What a generating backend produces, before it is dressed as Chat or Responses events.

A generation is an async iterator of pieces, per choice in order: text (with its token
log-probabilities when asked for), or a call (its name, then its argument text), then the
choice's finish reason; a :class:`Usage` comes last. Pieces of different choices may
interleave. :class:`~._body.Pause` items may appear anywhere, for pacing.

The wire formats (:mod:`._chat`, :mod:`.responses`) are built from these alone, so every
backend speaks both APIs the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Arguments", "Call", "Finish", "Piece", "Text", "TokenLogprob", "Usage"]

FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    #: The token's UTF-8 bytes (a token may hold part of a character).
    bytes: tuple[int, ...]
    #: The most likely tokens at this position: (token, logprob, bytes), best first.
    top: tuple[tuple[str, float, tuple[int, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class Text:
    choice: int
    #: May be empty: the choice has started and will be text (sent as the role delta).
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Call:
    """A function call starts; its arguments follow as :class:`Arguments`."""

    choice: int
    call_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Arguments:
    choice: int
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    choice: int
    #: "tool_calls" also stands for the legacy "function_call": the renderer knows which.
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


Piece = Text | Call | Arguments | Finish | Usage
