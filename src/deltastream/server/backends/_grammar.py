"""Grammars (llama.cpp's GBNF) that make the local model's output fit the request.

A JSON schema becomes a grammar with llama-cpp-python's converter, so a constrained
generation can only produce JSON that matches it: tool arguments, ``json_schema``
replies. What the converter cannot enforce (``minimum``, ``maximum``, ``multipleOf``,
string ``format``s...) is not enforced; everything it builds into the grammar is.

The converter is pure Python; llama.cpp parses the result again when sampling starts,
and :func:`check` runs that parse first, since a grammar it rejects would otherwise
fail deep inside the sampler.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._errors import APIError

__all__ = ["any_object", "check", "one_of", "schema_grammar"]

#: Bounded whitespace, unlike llama.cpp's stock JSON grammar, whose unbounded
#: ``ws`` lets a small model emit newlines until it runs out of tokens.
_ANY_OBJECT: Final = {"type": "object"}


def schema_grammar(schema: Mapping[str, object], *, what: str, param: str) -> str:
    """The grammar of JSON matching ``schema``, or the 400 for a schema it cannot take."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        text: str = json_schema_to_gbnf(json.dumps(schema))
    except (ValueError, AssertionError, KeyError, TypeError, RecursionError) as exc:
        raise APIError(
            400,
            f"Invalid schema for {what}: the local model cannot follow it ({exc}).",
            param=param,
            code="invalid_schema",
        ) from None
    return text


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
