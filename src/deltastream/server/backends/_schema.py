"""Plausible tool-call arguments from a function's JSON schema and the user's prompt.

Every property is filled, required or not, in the schema's order: ``const``, else the
first ``enum`` value, else ``default``, else a value by type (strings taken from the
prompt where the property's name suggests what to take, numbers 1 within bounds,
booleans true, arrays of one item, objects recursively; strings cut or padded to
``maxLength`` / ``minLength``). Local ``$ref``s
(``#/$defs/...``, ``#/definitions/...``) are followed, to a bounded depth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ._compose import topic_of

__all__ = ["example_arguments"]

_MAX_DEPTH: Final = 8
_PLACE_NAMES: Final = frozenset(
    {"location", "city", "place", "destination", "origin", "country", "region", "town", "address"}
)
_TEXT_NAMES: Final = frozenset(
    {"query", "q", "search", "question", "prompt", "text", "input", "message", "content"}
)
_TOPIC_NAMES: Final = frozenset({"topic", "subject", "title", "name", "keyword", "keywords"})
_PLACE_RE: Final = re.compile(
    r"\b(?:in|at|for|from|to|near|of)\s+((?:[A-Z][\w'-]*)(?:\s+[A-Z][\w'-]*)*)"
)
_PROPER_RE: Final = re.compile(r"(?<=\s)([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)")
_TICKER_RE: Final = re.compile(r"\b[A-Z]{2,5}\b")


def _place(prompt: str) -> str | None:
    match = _PLACE_RE.search(prompt) or _PROPER_RE.search(prompt)
    return match[1] if match else None


def _string(name: str, schema: Mapping[str, object], prompt: str) -> str:
    text = _plain_string(name, schema, prompt)
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    if isinstance(longest, int) and len(text) > longest:
        text = text[:longest]
    if isinstance(shortest, int) and len(text) < shortest:
        text += "x" * (shortest - len(text))
    return text


def _plain_string(name: str, schema: Mapping[str, object], prompt: str) -> str:
    lowered = name.lower()
    text = " ".join(prompt.split())
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2024-01-01T12:00:00Z"
    if fmt == "date" or "date" in lowered:
        return "2024-01-01"
    if fmt == "email" or "email" in lowered:
        return "user@example.com"
    if fmt in ("uri", "url") or lowered in ("url", "uri", "link"):
        return "https://example.com"
    if lowered in _PLACE_NAMES or lowered.endswith(("_city", "_location")):
        return _place(text) or "San Francisco"
    if lowered in ("symbol", "ticker"):
        match = _TICKER_RE.search(text)
        return match[0] if match else "AAPL"
    if lowered in _TEXT_NAMES:
        return text or "hello"
    if lowered in _TOPIC_NAMES:
        return topic_of(text)
    return _place(text) or topic_of(text)


def _resolve(schema: Mapping[str, object], root: Mapping[str, object]) -> Mapping[str, object]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: object = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, Mapping) else None
    return target if isinstance(target, Mapping) else {}


def _type_of(schema: Mapping[str, object]) -> str | None:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((kind for kind in declared if kind != "null"), None)
    if isinstance(declared, str):
        return declared
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _number(schema: Mapping[str, object]) -> float:
    low, high = schema.get("minimum"), schema.get("maximum")
    value: float = 1
    if isinstance(low, int | float) and value < low:
        value = low
    if isinstance(high, int | float) and value > high:
        value = high
    return value


def _value(
    name: str, schema: Mapping[str, object], root: Mapping[str, object], prompt: str, depth: int
) -> object:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    nested = depth < _MAX_DEPTH
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if nested and isinstance(options, list):
            usable = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            if usable:
                return _value(name, usable[0], root, prompt, depth + 1)
    kind = _type_of(schema)
    if kind == "object":
        return _object(schema, root, prompt, depth + 1) if nested else {}
    if kind == "array":
        if not nested:
            return []
        items = schema.get("items")
        item_schema = items if isinstance(items, Mapping) else {}
        minimum = schema.get("minItems")
        count = min(minimum, 8) if isinstance(minimum, int) and minimum > 1 else 1
        return [_value(name, item_schema, root, prompt, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(_number(schema))
    if kind == "number":
        number = _number(schema)
        return int(number) if number == int(number) else number
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(name, schema, prompt)


def _object(
    schema: Mapping[str, object], root: Mapping[str, object], prompt: str, depth: int
) -> dict[str, object]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {
        str(name): _value(str(name), sub if isinstance(sub, Mapping) else {}, root, prompt, depth)
        for name, sub in properties.items()
    }


def example_arguments(parameters: Mapping[str, object], prompt: str) -> dict[str, object]:
    """Arguments for a function whose ``parameters`` schema is given, as a JSON object."""
    return _object(_resolve(parameters, parameters), parameters, prompt, 0)
