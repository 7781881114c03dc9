"""Deterministic, plausible replies for the scripted backend.

``compose_reply(prompt, variant)`` picks a reply shape from the prompt (greeting,
counting, story, joke, haiku, explanation, anything else) and fills it in; ``variant``
picks among equivalent wordings so that ``n > 1`` choices differ. No randomness, no
clock: the same prompt and variant always give the same text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

__all__ = ["compose_reply", "count_tokens", "split_tokens", "tool_result_reply", "topic_of"]

MAX_COUNT: Final = 1000

# A "token" is a word or a run of punctuation, with the whitespace before it: close to
# how OpenAI's deltas look (" unable", " to", "."), and about one per word.
_TOKEN_RE: Final = re.compile(r"\s*(?:\w+|[^\w\s]+)|\s+")


def split_tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    return sum(1 for token in split_tokens(text) if not token.isspace())


_LEAD_IN: Final = re.compile(
    r"^(?:(?:please|kindly|hey|ok(?:ay)?|so)[,\s]+)*"
    r"(?:(?:can|could|would|will) you\s+)?"
    r"(?:tell me (?:about|a bit about)|explain|describe|summari[sz]e|define|"
    r"what (?:is|are|was|were)(?: an?| the)?|who (?:is|was)|how (?:does|do|did|can|to)|"
    r"why (?:is|are|does|do)|talk about|write about|give me an? (?:overview|summary) of|"
    r"i (?:want|would like) to know about)?\s*",
    re.IGNORECASE,
)


def topic_of(prompt: str) -> str:
    """The subject of a prompt: "Explain Python!" -> "Python"; "" -> "that"."""
    text = " ".join(prompt.split())
    text = _LEAD_IN.sub("", text, count=1)
    text = text.strip(" \t?!.,;:'\"")
    if len(text) > 80:
        text = text[:80].rsplit(" ", 1)[0]
    return text or "that"


def _subject_phrases(subject: str) -> tuple[str, str]:
    """("a robot", "the robot") for "a robot"; ("friendship", "friendship") otherwise."""
    words = subject.split(maxsplit=1)
    if len(words) == 2 and words[0].lower() in ("a", "an", "the", "one"):
        return subject, "the " + words[1]
    return subject, subject


_NAMES: Final = ("Bolt", "Pip", "Juniper", "Cog", "Nova")


def _story(subject: str, variant: int) -> str:
    name = _NAMES[variant % len(_NAMES)]
    indefinite, definite = _subject_phrases(subject)
    if indefinite != definite:
        return (
            f"Once upon a time, in a quiet workshop at the edge of a busy city, there lived "
            f"{indefinite} named {name}. Every morning {name} swept the floor, sorted the bolts "
            f"by size and watched the sunrise through a dusty window. One night a storm knocked "
            f"out the power across the city, and the workshop fell silent. {name} remembered "
            f"the old solar panel on the roof, climbed up through the rain and connected it to "
            f"the lights. When the neighbours saw the warm glow, they came in from the cold, and "
            f"the workshop was full of laughter until dawn. From then on, everyone knew that "
            f"{definite} was more than it seemed: it was a friend."
        )
    return (
        f"Once upon a time, in a small town by the sea, people told stories about {subject}. "
        f"A curious girl named {name} decided to find out whether they were true. She "
        f"walked the cliffs, asked the fishermen and read every old book in the library. "
        f"Each answer led to a new question, and each question to a new friend. When she "
        f"finally came home, she understood that {subject} was not something to find but "
        f"something to share, and she spent the rest of her life telling the story to anyone "
        f"who would listen."
    )


def _count(start: int, end: int) -> str:
    step = 1 if end >= start else -1
    stop = start + step * min(abs(end - start), MAX_COUNT - 1)
    numbers = ", ".join(str(number) for number in range(start, stop + step, step))
    return numbers + ("." if stop == end else ", and so on.")


def _greeting(variant: int) -> str:
    greetings = (
        "Hello! 👋 How can I help you today?",
        "Hi there! 👋 What can I do for you today?",
        "Hello! 👋 It's nice to hear from you. What would you like to talk about?",
    )
    return greetings[variant % len(greetings)]


def _joke(topic: str | None, variant: int) -> str:
    if topic:
        return (
            f"Why did the {topic} cross the road? To prove it could stream to the other side "
            f"one token at a time!"
        )
    jokes = (
        "Why do programmers prefer dark mode? Because light attracts bugs!",
        "Why did the developer go broke? Because he used up all his cache.",
    )
    return jokes[variant % len(jokes)]


def _haiku(topic: str, variant: int) -> str:
    closings = ("the bug sleeps at last", "a green build at dawn", "the tests pass in peace")
    return f"Quiet keys at night,\n{topic} unfolds line by line,\n{closings[variant % 3]}."


def _explain(topic: str, variant: int) -> str:
    opening = ("Here is a short explanation of", "Here is a quick overview of")[variant % 2]
    return (
        f"{opening} {topic}.\n\n{topic[:1].upper() + topic[1:]} is easiest to understand in "
        f"three steps. First, the core idea: what problem it solves and why people care about "
        f"it. Second, the key parts: the few concepts you meet every time you work with it. "
        f"Third, practice: a small, concrete example that you can try yourself. Start with "
        f"the basics, build one small thing, and the details of {topic} will follow naturally."
    )


def _other(topic: str, variant: int) -> str:
    opening = ("Good question about", "Thanks for asking about")[variant % 2]
    return (
        f"{opening} {topic}! In short: start with the basics, look at one concrete example, "
        f"and build from there. Let me know if you would like more detail on any part of "
        f"{topic}."
    )


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], int], str]]

_RULES: Final[Sequence[_Rule]] = (
    (
        re.compile(r"^(?:hello|hi|hey|greetings|good (?:morning|afternoon|evening))\b", re.I),
        lambda match, variant: _greeting(variant),
    ),
    (
        re.compile(r"\bcount (?:from (-?\d{1,9}) )?(?:up |down )?to (-?\d{1,9})\b", re.I),
        lambda match, variant: _count(int(match[1] or 1), int(match[2])),
    ),
    (
        re.compile(r"\b(?:story|tale|fable) (?:about|of) (.+?)[.!?]*$", re.I),
        lambda match, variant: _story(match[1], variant),
    ),
    (
        re.compile(r"\bjoke(?: about (.+?))?[.!?]*$", re.I),
        lambda match, variant: _joke(match[1], variant),
    ),
    (
        re.compile(r"\b(?:haiku|poem) (?:about|on) (.+?)[.!?]*$", re.I),
        lambda match, variant: _haiku(match[1], variant),
    ),
    (
        re.compile(r"^(?:please )?(?:explain|describe|what (?:is|are)|tell me about)\b", re.I),
        lambda match, variant: _explain(topic_of(match.string), variant),
    ),
)


def compose_reply(prompt: str, variant: int = 0) -> str:
    text = " ".join(prompt.split())
    for pattern, build in _RULES:
        match = pattern.search(text)
        if match:
            return build(match, variant)
    return _other(topic_of(text), variant)


def tool_result_reply(result: str) -> str:
    """The reply after a tool has run: the assistant reports what the tool said."""
    result = " ".join(result.split())
    if len(result) > 300:
        result = result[:300] + "…"
    return f"Here is what I found: {result}" if result else "The tool returned nothing."
