"""Grammars (llama.cpp's GBNF) that make the local model's output fit the request.

A JSON schema becomes a grammar with llama-cpp-python's converter, so a constrained
generation can only produce JSON that matches it: tool arguments, ``json_schema``
replies. What the converter cannot enforce (``minimum``, ``maximum``, ``multipleOf``,
string ``format``s...) is not enforced; everything it builds into the grammar is.

Strings exclude control characters (the converter's ``char`` rule lets a raw newline
through, which JSON forbids). A string with no ``maxLength`` (nor ``enum``, ``const``
or ``pattern``) is held to :data:`MAX_STRING` characters: still valid under the schema,
and it keeps a small model from wandering inside one string until ``max_tokens`` cuts
the JSON.

The converter is pure Python; llama.cpp parses the result again when sampling starts,
and :func:`check` runs that parse first, since a grammar it rejects would otherwise
fail deep inside the sampler.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._errors import APIError

__all__ = ["MAX_STRING", "any_object", "bounded", "check", "one_of", "schema_grammar"]

MAX_STRING: Final = 64
_NESTED_ONE: Final = ("items", "additionalProperties", "not")
_LOOSE_CHAR: Final = 'char ::= [^"\\\\]'
_JSON_CHAR: Final = 'char ::= [^"\\\\\\x00-\\x1F\\x7F]'
_NESTED_MANY: Final = ("anyOf", "oneOf", "allOf", "prefixItems")
_NESTED_MAPS: Final = ("properties", "$defs", "definitions")

#: Bounded whitespace, unlike llama.cpp's stock JSON grammar, whose unbounded
#: ``ws`` lets a small model emit newlines until it runs out of tokens.
_ANY_OBJECT: Final = {"type": "object"}


def bounded(schema: object) -> object:
    """``schema`` with :data:`MAX_STRING` as the ``maxLength`` of open-ended strings."""
    if isinstance(schema, list):
        return [bounded(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = dict(schema)
    kind = out.get("type")
    is_string = kind == "string" or (isinstance(kind, list) and "string" in kind)
    if is_string and not any(key in out for key in ("maxLength", "enum", "const", "pattern")):
        out["maxLength"] = MAX_STRING
    for key in _NESTED_ONE:
        if isinstance(out.get(key), Mapping):
            out[key] = bounded(out[key])
    for key in _NESTED_MANY:
        if isinstance(out.get(key), list):
            out[key] = bounded(out[key])
    for key in _NESTED_MAPS:
        nested = out.get(key)
        if isinstance(nested, Mapping):
            out[key] = {name: bounded(value) for name, value in nested.items()}
    return out


def schema_grammar(schema: Mapping[str, object], *, what: str, param: str) -> str:
    """The grammar of JSON matching ``schema``, or the 400 for a schema it cannot take."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        text: str = json_schema_to_gbnf(json.dumps(bounded(schema)))
    except (ValueError, AssertionError, KeyError, TypeError, RecursionError) as exc:
        raise APIError(
            400,
            f"Invalid schema for {what}: the local model cannot follow it ({exc}).",
            param=param,
            code="invalid_schema",
        ) from None
    return text.replace(_LOOSE_CHAR, _JSON_CHAR)


def any_object() -> str:
    return schema_grammar(_ANY_OBJECT, what="a JSON object", param="response_format")


def one_of(words: Sequence[str]) -> str:
    """Exactly one of ``words`` (letters, digits, ``_`` and ``-`` only)."""
    return "root ::= " + " | ".join(json.dumps(word) for word in words)


def check(grammar: str, vocab: Any) -> bool:
    """Whether llama.cpp accepts ``grammar`` (``vocab``: the loaded model's)."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True
