"""Checks a Chat Completions request body and turns it into a :class:`ChatRequest`.

Pure: bytes in, a frozen request or an :class:`APIError` (400) out, with OpenAI's
messages, ``param`` and ``code`` where OpenAI has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import msgspec

from ._params import (
    NAME_RE,
    OutputFormat,
    Sampling,
    contains_json,
    empty_array,
    int_param,
    invalid,
    missing,
    output_format,
    sampling,
    type_name,
    wrong_type,
)
from ._tool_messages import check_tool_messages

__all__ = ["ChatRequest", "Tool", "message_text", "parse_json_body", "validate_chat_request"]

_ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_MAX_N: Final = 128
_TEXT_PARTS: Final = frozenset({"text", "refusal"})


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    parameters: dict[str, object]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[dict[str, object], ...]
    stream: bool = False
    include_usage: bool = False
    n: int = 1
    max_tokens: int | None = None
    seed: int | None = None
    tools: tuple[Tool, ...] = ()
    #: True when the tools came from the legacy ``functions`` parameter.
    legacy_functions: bool = False
    #: "auto", "none", "required", or the name of the one tool to call.
    tool_choice: str = "auto"
    sampling: Sampling = field(default_factory=Sampling)
    output_format: OutputFormat | None = None


def parse_json_body(body: bytes) -> dict[str, object]:
    """The request body as a JSON object, or the 400 OpenAI answers for anything else."""
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"
        ) from None
    if not isinstance(value, dict):
        raise invalid(f"The request body must be a JSON object, but got {type_name(value)}.")
    return value


def message_text(content: object) -> str:
    """A message's text: the string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, dict)]
        return "".join(part for part in parts if isinstance(part, str))
    return ""


def _messages(body: dict[str, object]) -> tuple[dict[str, object], ...]:
    if "messages" not in body:
        raise missing("messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise wrong_type("messages", "an array of objects", messages)
    if not messages:
        raise empty_array("messages")
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise wrong_type(param, "an object", message)
        if "role" not in message:
            raise missing(f"{param}.role")
        role = message["role"]
        if role not in _ROLES:
            allowed = ", ".join(f"'{name}'" for name in sorted(_ROLES))
            raise invalid(
                f"Invalid value: {role!r}. Supported values are: {allowed}.",
                f"{param}.role",
                "invalid_value",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise wrong_type(f"{param}.content", "a string or an array", content)
        for number, part in enumerate(content if isinstance(content, list) else []):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in _TEXT_PARTS:
                raise invalid(
                    f"Unsupported content part {kind!r} in '{param}.content[{number}]': the "
                    "local server's models read text only.",
                    f"{param}.content[{number}]",
                    "unsupported_value",
                )
    check_tool_messages(messages)
    return tuple(messages)


def _function(value: object, param: str) -> Tool:
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise missing(f"{param}.name")
    if not NAME_RE.fullmatch(name):
        raise invalid(
            f"Invalid '{param}.name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
            f"{param}.name",
            "invalid_value",
        )
    parameters = value.get("parameters", {})
    if not isinstance(parameters, dict):
        raise wrong_type(f"{param}.parameters", "an object", parameters)
    description = value.get("description")
    return Tool(name, parameters, description if isinstance(description, str) else "")


def _tools(body: dict[str, object]) -> tuple[tuple[Tool, ...], bool]:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise wrong_type("tools", "an array of objects", tools)
        parsed = []
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type", "function") != "function":
                raise invalid(
                    f"Invalid 'tools[{index}]': only function tools are supported here.",
                    f"tools[{index}]",
                    "invalid_value",
                )
            parsed.append(_function(tool.get("function"), f"tools[{index}].function"))
        return tuple(parsed), False
    functions = body.get("functions")
    if functions is None:
        return (), False
    if not isinstance(functions, list):
        raise wrong_type("functions", "an array of objects", functions)
    return tuple(_function(f, f"functions[{i}]") for i, f in enumerate(functions)), True


def _tool_choice(body: dict[str, object], legacy: bool) -> str:
    param = "function_call" if legacy else "tool_choice"
    choice = body.get(param)
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise invalid(f"Invalid value for '{param}': {choice!r}.", param, "invalid_value")
        return choice
    if isinstance(choice, dict):
        named = choice if legacy else choice.get("function")
        if isinstance(named, dict) and isinstance(named.get("name"), str):
            return str(named["name"])
    raise invalid(f"Invalid value for '{param}'.", param, "invalid_value")


def _refuse_tool_options_without_tools(body: dict[str, object]) -> None:
    """OpenAI refuses the options that steer tool calls when no tools are given."""
    for option, tools in (
        ("tool_choice", "tools"),
        ("parallel_tool_calls", "tools"),
        ("function_call", "functions"),
    ):
        if body.get(option) is not None:
            raise invalid(
                f"Invalid value for '{option}': '{option}' is only allowed when '{tools}' "
                "are specified.",
                option,
                "invalid_value",
            )


def validate_chat_request(body: dict[str, object]) -> ChatRequest:
    model = body.get("model")
    if model is None:
        raise invalid("you must provide a model parameter")
    if not isinstance(model, str) or not model:
        raise wrong_type("model", "a non-empty string", model)
    messages = _messages(body)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise wrong_type("stream", "a boolean", stream)
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
                "invalid_value",
            )
        if not isinstance(options, dict):
            raise wrong_type("stream_options", "an object", options)
        include_usage = options.get("include_usage") is True
    max_tokens = int_param(body, "max_completion_tokens", 1, None)
    if max_tokens is None:
        max_tokens = int_param(body, "max_tokens", 1, None)
    tools, legacy = _tools(body)
    if not tools:
        _refuse_tool_options_without_tools(body)
    tool_choice = _tool_choice(body, legacy)
    if tool_choice not in ("auto", "none", "required") and all(
        tool.name != tool_choice for tool in tools
    ):
        raise invalid(f"Tool {tool_choice!r} is not among the tools given.", "tool_choice")
    sampling_params = sampling(body)
    response_format = output_format(body.get("response_format"), "response_format")
    if response_format is not None and response_format.kind == "json_object":
        texts = [message_text(message.get("content")) for message in messages]
        if not contains_json(texts):
            raise invalid(
                "'messages' must contain the word 'json' in some form, to use 'response_format' "
                "of type 'json_object'.",
                "messages",
            )
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        n=int_param(body, "n", 1, _MAX_N) or 1,
        max_tokens=max_tokens,
        seed=int_param(body, "seed", -(2**63), 2**63 - 1),
        tools=tools,
        legacy_functions=legacy,
        tool_choice=tool_choice,
        sampling=sampling_params,
        output_format=response_format,
    )
