"""Checks the generation parameters that Chat Completions and Responses share.

Pure: a request body in, frozen values or a 400 :class:`APIError` out, with OpenAI's
wording, ``param`` and ``code`` where OpenAI has them. Parameters the local server cannot
honour are refused here (:func:`refuse_unsupported`), never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ._errors import APIError

__all__ = [
    "NAME_RE",
    "OutputFormat",
    "Sampling",
    "invalid",
    "number_param",
    "output_format",
    "refuse_unsupported",
    "stop_param",
    "type_name",
    "wrong_type",
]

NAME_RE: Final = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_TOP_LOGPROBS: Final = 20
MAX_STOPS: Final = 4


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """``response_format`` (Chat) or ``text.format`` (Responses) other than plain text."""

    kind: Literal["json_object", "json_schema"]
    name: str = ""
    #: The JSON schema the reply must match (``json_schema`` only).
    schema: Mapping[str, object] | None = None


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def type_name(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def wrong_type(param: str, expected: str, value: object) -> APIError:
    message = (
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)} instead."
    )
    return invalid(message, param, "invalid_type")


def missing(param: str) -> APIError:
    return invalid(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def empty_array(param: str) -> APIError:
    return invalid(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got "
        "an empty array instead.",
        param,
        "empty_array",
    )


def _check_range(
    param: str, kind: str, value: float, low: float, high: float | None, shown: str = ""
) -> None:
    """Raise OpenAI's error for a ``kind`` ("integer", "decimal") outside ``[low,
    high]`` (``high`` None: no upper bound); ``shown``: the format the bounds are
    written in."""
    if value < low:
        side, bound, code = "below minimum", f">= {low:{shown}}", "below_min"
    elif high is not None and value > high:
        side, bound, code = "above maximum", f"<= {high:{shown}}", "above_max"
    else:
        return
    raise invalid(
        f"Invalid '{param}': {kind} {side} value. Expected a value {bound}, but got "
        f"{value!r} instead.",
        param,
        f"{kind}_{code}_value",
    )


def int_param(body: Mapping[str, object], name: str, low: int, high: int | None) -> int | None:
    """An integer within ``[low, high]`` (``high`` None: no upper bound), or ``None``
    when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise wrong_type(name, "an integer", value)
    _check_range(name, "integer", value, low, high)
    return value


def number_param(
    body: Mapping[str, object], name: str, low: float, high: float, param: str | None = None
) -> float | None:
    """A number within ``[low, high]``, or ``None`` when absent or null."""
    param = param or name
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(param, "a decimal", value)
    _check_range(param, "decimal", value, low, high, "g")
    return float(value)


def stop_param(body: Mapping[str, object]) -> tuple[str, ...]:
    value = body.get("stop")
    stops = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise wrong_type("stop", "a string or an array of strings", value)
    if len(stops) > MAX_STOPS:
        raise invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length "
            f"{MAX_STOPS}, but got an array with length {len(stops)} instead.",
            "stop",
            "array_above_max_length",
        )
    return tuple(stop for stop in stops if stop)


def sampling(body: Mapping[str, object]) -> Sampling:
    """The Chat Completions sampling parameters."""
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise wrong_type("logprobs", "a boolean", logprobs)
    top = body.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int):
            raise wrong_type("top_logprobs", "an integer", top)
        if not 0 <= top <= MAX_TOP_LOGPROBS:
            raise invalid(
                f"Invalid 'top_logprobs': integer out of range. Expected a value between 0 "
                f"and {MAX_TOP_LOGPROBS}, but got {top} instead.",
                "top_logprobs",
                "integer_out_of_range",
            )
        if not logprobs:
            raise invalid(
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                "'top_logprobs' is given.",
                "top_logprobs",
                "invalid_value",
            )
    return Sampling(
        temperature=number_param(body, "temperature", 0, 2),
        top_p=number_param(body, "top_p", 0, 1),
        frequency_penalty=number_param(body, "frequency_penalty", -2, 2) or 0.0,
        presence_penalty=number_param(body, "presence_penalty", -2, 2) or 0.0,
        stop=stop_param(body),
        logprobs=bool(logprobs),
        top_logprobs=top or 0,
    )


def output_format(value: object, param: str, *, nested: bool = True) -> OutputFormat | None:
    """``response_format`` (``nested``: the schema under ``json_schema``) or, for the
    Responses API, ``text.format`` (the schema beside ``type``)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise wrong_type(param, "an object", value)
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind != "json_schema":
        raise invalid(
            f"Invalid value: {kind!r}. Supported values are: 'text', 'json_object' and "
            "'json_schema'.",
            f"{param}.type",
            "invalid_value",
        )
    spec = value.get("json_schema") if nested else value
    spec_param = f"{param}.json_schema" if nested else param
    if not isinstance(spec, dict):
        raise missing(spec_param)
    name = spec.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise invalid(
            f"Invalid '{spec_param}.name': expected a string of 1 to 64 letters, digits, "
            f"'_' or '-', but got {name!r}.",
            f"{spec_param}.name",
            "invalid_value",
        )
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise wrong_type(f"{spec_param}.schema", "an object", schema)
    return OutputFormat("json_schema", name, schema)


def contains_json(texts: list[str]) -> bool:
    return any("json" in text.lower() for text in texts)


#: Parameters with no local meaning that would change a real reply, refused rather
#: than ignored. (Purely informational ones, such as ``user`` or ``metadata``, pass.)
_UNSUPPORTED: Final = (
    "audio",
    "prediction",
    "web_search_options",
    "reasoning_effort",
)


def refuse_unsupported(body: Mapping[str, object], backend: str) -> None:
    for name in _UNSUPPORTED:
        if body.get(name) is not None:
            raise _unsupported(name, backend)
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise _unsupported("modalities", backend)
    if body.get("logit_bias"):
        raise _unsupported("logit_bias", backend)


def _unsupported(name: str, backend: str) -> APIError:
    return invalid(
        f"Unsupported parameter: '{name}' is not supported by the local server's "
        f"{backend} backend.",
        name,
        "unsupported_parameter",
    )
