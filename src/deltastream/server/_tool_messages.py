"""Checks the tool calls in a Chat Completions conversation as OpenAI does.

Pure: the messages (each already an object with a known role) in, an
:class:`APIError` (400) out for the first fault. First the shapes: an assistant
message's ``tool_calls`` is a non-empty array of calls, each with a string ``id`` and
a ``function`` object with string ``name`` and ``arguments``; a ``tool`` message has a
string ``tool_call_id``. Then the pairing: each ``tool`` message answers a call of the
assistant message just before it (or of the tool messages between), in any order, and
every such call is answered before the conversation goes on.
"""

from __future__ import annotations

from typing import NoReturn

from ._params import empty_array, invalid, missing, wrong_type

__all__ = ["check_tool_messages"]


def check_tool_messages(messages: list[dict[str, object]]) -> None:
    waiting: list[str] = []  # the ids of the calls not yet answered
    asker = 0  # the index of the assistant message that made them
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            answered = _string(message, "tool_call_id", f"messages[{index}]")
            if answered not in waiting:
                raise invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            waiting.remove(answered)
            continue
        if waiting:
            _unanswered(asker, waiting)
        if role == "assistant" and message.get("tool_calls") is not None:
            waiting = _call_ids(message["tool_calls"], f"messages[{index}].tool_calls")
            asker = index
    if waiting:
        _unanswered(asker, waiting)


def _call_ids(calls: object, param: str) -> list[str]:
    if not isinstance(calls, list):
        raise wrong_type(param, "an array of objects", calls)
    if not calls:
        raise empty_array(param)
    ids = []
    for number, call in enumerate(calls):
        where = f"{param}[{number}]"
        if not isinstance(call, dict):
            raise wrong_type(where, "an object", call)
        ids.append(_string(call, "id", where))
        function = call.get("function")
        if function is None:
            raise missing(f"{where}.function")
        if not isinstance(function, dict):
            raise wrong_type(f"{where}.function", "an object", function)
        _string(function, "name", f"{where}.function")
        _string(function, "arguments", f"{where}.function")
    return ids


def _string(holder: dict[str, object], name: str, where: str) -> str:
    value = holder.get(name)
    if value is None:
        raise missing(f"{where}.{name}")
    if not isinstance(value, str):
        raise wrong_type(f"{where}.{name}", "a string", value)
    return value


def _unanswered(index: int, ids: list[str]) -> NoReturn:
    raise invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(ids),
        f"messages.[{index}].role",
    )
