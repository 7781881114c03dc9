"""Checks a ``POST /v1/responses`` body and turns it into what a backend generates from.

Pure: a body in, a frozen :class:`ResponsesRequest` or a 400 :class:`APIError` out. The
input items become chat messages (``function_call`` items become assistant tool calls,
``function_call_output`` items tool messages), so both generating backends serve the
Responses API with the code that serves Chat Completions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .._errors import APIError
from .._params import (
    MAX_TOP_LOGPROBS,
    NAME_RE,
    OutputFormat,
    Sampling,
    contains_json,
    int_param,
    invalid,
    missing,
    number_param,
    output_format,
    wrong_type,
)
from .._validate import ChatRequest, Tool, message_text
from ._items import listed_items

__all__ = ["LOGPROBS_INCLUDE", "ResponsesRequest", "validate_responses_request"]

LOGPROBS_INCLUDE: Final = "message.output_text.logprobs"
MIN_OUTPUT_TOKENS: Final = 16
_ROLES: Final = frozenset({"user", "system", "developer", "assistant"})
_TEXT_PARTS: Final = frozenset({"input_text", "output_text", "text"})
#: Request fields the local models cannot act on: refused, never ignored.
_UNSUPPORTED: Final = ("conversation", "prompt", "max_tool_calls")

Message = dict[str, object]


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    model: str
    #: This request's input, as chat messages (without instructions or earlier turns).
    input: tuple[Message, ...]
    #: The same input as ``GET /v1/responses/{id}/input_items`` lists it.
    input_items: tuple[Message, ...]
    instructions: str | None
    tools: tuple[Tool, ...]
    tool_choice: str
    output_format: OutputFormat | None
    sampling: Sampling
    max_output_tokens: int | None
    stream: bool
    background: bool
    store: bool
    previous_response_id: str | None
    #: The request fields a response object repeats, as they were sent or defaulted.
    echo: dict[str, object]

    def chat_request(self, history: tuple[Message, ...]) -> ChatRequest:
        """What to generate: ``history`` (earlier turns) and this input, after the
        instructions."""
        system: tuple[Message, ...] = ()
        if self.instructions:
            system = ({"role": "system", "content": self.instructions},)
        return ChatRequest(
            model=self.model,
            messages=(*system, *history, *self.input),
            stream=self.stream,
            max_tokens=self.max_output_tokens,
            tools=self.tools,
            tool_choice=self.tool_choice,
            sampling=self.sampling,
            output_format=self.output_format,
        )


def _part_text(part: object, param: str) -> str:
    if not isinstance(part, dict):
        raise wrong_type(param, "an object", part)
    kind = part.get("type")
    if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
        return str(part["text"])
    if kind in ("refusal",):
        return str(part.get("refusal") or "")
    raise invalid(
        f"Unsupported content part {kind!r} in '{param}': the local server's models read "
        "text only.",
        param,
        "unsupported_value",
    )


def _content(value: object, param: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_part_text(part, f"{param}[{i}]") for i, part in enumerate(value))
    raise wrong_type(param, "a string or an array of content parts", value)


def _item(item: object, param: str) -> Message | None:
    if not isinstance(item, dict):
        raise wrong_type(param, "an object", item)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in _ROLES:
            allowed = ", ".join(f"'{name}'" for name in sorted(_ROLES))
            raise invalid(
                f"Invalid value: {role!r}. Supported values are: {allowed}.",
                f"{param}.role",
                "invalid_value",
            )
        return {"role": role, "content": _content(item.get("content"), f"{param}.content")}
    if kind == "function_call":
        call_id, name = item.get("call_id"), item.get("name")
        arguments = item.get("arguments", "")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise invalid(
                f"Invalid '{param}': a function_call item needs 'call_id' and 'name'.", param
            )
        call = {"name": name, "arguments": arguments if isinstance(arguments, str) else ""}
        tool_call = {"id": call_id, "type": "function", "function": call}
        return {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise invalid(f"Missing required parameter: '{param}.call_id'.", f"{param}.call_id")
        output = _content(item.get("output", ""), f"{param}.output")
        return {"role": "tool", "tool_call_id": call_id, "content": output}
    if kind == "reasoning":
        return None  # the local models do not reason: nothing to carry over
    raise invalid(
        f"Unsupported input item type {kind!r} in '{param}' for the local server.",
        f"{param}.type",
        "unsupported_value",
    )


def _input(body: dict[str, object]) -> tuple[Message, ...]:
    value = body.get("input")
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        return ({"role": "user", "content": value},)
    if not isinstance(value, list):
        raise wrong_type("input", "a string or an array of input items", value)
    items = [_item(item, f"input[{i}]") for i, item in enumerate(value)]
    return tuple(item for item in items if item is not None)


def _tools(body: dict[str, object]) -> tuple[Tool, ...]:
    value = body.get("tools")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise wrong_type("tools", "an array of objects", value)
    tools = []
    for index, tool in enumerate(value):
        param = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise wrong_type(param, "an object", tool)
        if tool.get("type") != "function":
            raise invalid(
                f"Unsupported tool type {tool.get('type')!r} in '{param}': the local server "
                "runs function tools only.",
                f"{param}.type",
                "unsupported_value",
            )
        name = tool.get("name")
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise invalid(
                f"Invalid '{param}.name': expected 1 to 64 letters, digits, '_' or '-'.",
                f"{param}.name",
                "invalid_value",
            )
        parameters = tool.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise wrong_type(f"{param}.parameters", "an object", parameters)
        description = tool.get("description")
        tools.append(Tool(name, parameters, description if isinstance(description, str) else ""))
    return tuple(tools)


def _strict_flags(body: dict[str, object]) -> list[bool]:
    """Each function tool's ``strict`` as sent; the Responses API's default is true."""
    sent = body.get("tools")
    tools = sent if isinstance(sent, list) else []
    return [not (isinstance(tool, dict) and tool.get("strict") is False) for tool in tools]


def _tool_choice(body: dict[str, object], tools: tuple[Tool, ...]) -> str:
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    if isinstance(choice, str) and choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if isinstance(name, str) and any(tool.name == name for tool in tools):
            return name
        raise invalid(f"Tool {name!r} is not among the tools given.", "tool_choice")
    raise invalid(f"Invalid value for 'tool_choice': {choice!r}.", "tool_choice", "invalid_value")


def _flag(body: dict[str, object], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise wrong_type(name, "a boolean", value)
    return value


def _sampling(body: dict[str, object]) -> Sampling:
    include = body.get("include") or []
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise wrong_type("include", "an array of strings", include)
    top = body.get("top_logprobs")
    if top is not None and (
        isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS
    ):
        raise invalid(
            f"Invalid 'top_logprobs': expected an integer from 0 to {MAX_TOP_LOGPROBS}.",
            "top_logprobs",
            "invalid_value",
        )
    return Sampling(
        temperature=number_param(body, "temperature", 0, 2),
        top_p=number_param(body, "top_p", 0, 1),
        logprobs=LOGPROBS_INCLUDE in include,
        top_logprobs=top or 0,
    )


def _refuse_unsupported(body: dict[str, object]) -> None:
    for name in _UNSUPPORTED:
        if body.get(name) is not None:
            raise invalid(
                f"Unsupported parameter: '{name}' is not supported by the local server.",
                name,
                "unsupported_parameter",
            )
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and any(v is not None for v in reasoning.values()):
        raise invalid(
            "Unsupported parameter: 'reasoning' is not supported with the local server's "
            "models (they do not reason).",
            "reasoning",
            "unsupported_parameter",
        )


def _text_format(body: dict[str, object]) -> tuple[OutputFormat | None, dict[str, object]]:
    text = body.get("text")
    if text is None:
        return None, {"format": {"type": "text"}}
    if not isinstance(text, dict):
        raise wrong_type("text", "an object", text)
    form = output_format(text.get("format"), "text.format", nested=False)
    return form, {"format": text.get("format") or {"type": "text"}}


def validate_responses_request(body: dict[str, object]) -> ResponsesRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise APIError(400, "Missing required parameter: 'model'.", param="model")
    _refuse_unsupported(body)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise wrong_type("instructions", "a string", instructions)
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise wrong_type("previous_response_id", "a string", previous)
    stream = _flag(body, "stream", False)
    if body.get("stream_options") is not None and not stream:
        raise invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
            "invalid_value",
        )
    tools = _tools(body)
    form, text = _text_format(body)
    input_messages = _input(body)
    if form is not None and form.kind == "json_object":
        texts = [message_text(m.get("content")) for m in input_messages] + [instructions or ""]
        if not contains_json(texts):
            raise invalid(
                "Response input messages must contain the word 'json' in some form to use "
                "'text.format' of type 'json_object'.",
                "input",
            )
    sampling = _sampling(body)
    tool_choice = _tool_choice(body, tools)
    max_output_tokens = int_param(body, "max_output_tokens", MIN_OUTPUT_TOKENS, None)
    background = _flag(body, "background", False)
    store = _flag(body, "store", True)
    metadata = body.get("metadata")
    echo: dict[str, object] = {
        "background": background,
        "instructions": instructions,
        "max_output_tokens": max_output_tokens,
        "metadata": metadata if isinstance(metadata, dict) else {},
        "parallel_tool_calls": _flag(body, "parallel_tool_calls", True),
        "previous_response_id": previous,
        "store": store,
        "temperature": 1.0 if sampling.temperature is None else sampling.temperature,
        "text": text,
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [
            {
                "type": "function",
                "name": tool.name,
                "description": tool.description or None,
                "parameters": tool.parameters,
                "strict": strict,
            }
            for tool, strict in zip(tools, _strict_flags(body), strict=True)
        ],
        "top_logprobs": sampling.top_logprobs,
        "top_p": 1.0 if sampling.top_p is None else sampling.top_p,
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user"),
    }
    return ResponsesRequest(
        model=model,
        input=input_messages,
        input_items=listed_items(body.get("input")),
        instructions=instructions,
        tools=tools,
        tool_choice=tool_choice,
        output_format=form,
        sampling=sampling,
        max_output_tokens=max_output_tokens,
        stream=stream,
        background=background,
        store=store,
        previous_response_id=previous,
        echo=echo,
    )
