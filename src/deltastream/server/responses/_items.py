"""A response's input items as ``GET /v1/responses/{id}/input_items`` lists them.

Pure: each input item (already checked by ``_request``) gets the shape and the id the
endpoint shows it with, and :func:`page` cuts one page out of a response's items with
OpenAI's cursor parameters (``after``, ``before``, ``limit``, ``order``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from .._errors import APIError
from .._params import int_param, invalid
from .._wire import random_id

__all__ = ["check_unique", "listed_items", "page"]

Item = dict[str, object]

DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100
_ORDERS: Final = ("asc", "desc")
_INTEGER: Final = re.compile(r"-?[0-9]{1,9}")


def listed_items(value: object) -> tuple[Item, ...]:
    """The ``input`` of a request that passed validation, item by item as listed."""
    if isinstance(value, str):
        return (_message("user", value, None),)
    if not isinstance(value, list):
        return ()
    return tuple(_listed(item) for item in value if isinstance(item, dict))


def check_unique(items: Sequence[Item]) -> None:
    """Refuse a conversation that holds one item twice (an earlier response's output
    sent again beside its ``previous_response_id``, say), as OpenAI does: its ids
    would no longer say which item a cursor is."""
    seen: set[object] = set()
    for item in items:
        item_id = item["id"]
        if item_id in seen:
            raise invalid(
                f"Duplicate item found with id {item_id}. Remove duplicate items from your "
                "input and try again.",
                "input",
            )
        seen.add(item_id)


def _listed(item: dict[str, object]) -> Item:
    kind = item.get("type", "message")
    given = item.get("id")
    item_id = given if isinstance(given, str) and given else None
    if kind == "message":
        return _message(str(item.get("role")), item.get("content"), item_id)
    if kind == "function_call":
        return {
            "id": item_id or random_id("fc_", 48),
            "type": "function_call",
            "status": "completed",
            "arguments": item.get("arguments", ""),
            "call_id": item.get("call_id"),
            "name": item.get("name"),
        }
    if kind == "function_call_output":
        return {
            "id": item_id or random_id("fco_", 48),
            "type": "function_call_output",
            "status": "completed",
            "call_id": item.get("call_id"),
            "output": item.get("output", ""),
        }
    # A reasoning item (the only other kind the local server takes).
    summary = item.get("summary")
    return {
        "id": item_id or random_id("rs_", 48),
        "type": "reasoning",
        "summary": summary if isinstance(summary, list) else [],
    }


def _message(role: str, content: object, item_id: str | None) -> Item:
    """A message item: an assistant's parts as output text (or refusals), anyone
    else's as input text."""
    assistant = role == "assistant"
    text_type = "output_text" if assistant else "input_text"
    parts = content if isinstance(content, list) else [{"type": text_type, "text": content}]
    listed = _output_part if assistant else _input_part
    return {
        "id": item_id or random_id("msg_", 48),
        "type": "message",
        "role": role,
        "status": "completed",
        "content": [listed(part) for part in parts if isinstance(part, dict)],
    }


def _input_part(part: dict[str, object]) -> dict[str, object]:
    if part.get("type") == "refusal":
        return {"type": "input_text", "text": str(part.get("refusal") or "")}
    return {"type": "input_text", "text": part.get("text")}


def _output_part(part: dict[str, object]) -> dict[str, object]:
    if part.get("type") == "refusal":
        return {"type": "refusal", "refusal": part.get("refusal")}
    return {"type": "output_text", "text": part.get("text"), "annotations": []}


def page(items: Sequence[Item], query: Mapping[str, str]) -> dict[str, object]:
    """One page of ``items`` (oldest first) as the endpoint answers ``query``."""
    limit = _limit(query.get("limit"))
    order = query.get("order", "desc")
    if order not in _ORDERS:
        raise invalid(
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
            "order",
            "invalid_value",
        )
    ordered = list(items) if order == "asc" else list(reversed(items))
    start, stop = 0, len(ordered)
    if (after := query.get("after")) is not None:
        start = _position(ordered, after, "after") + 1
    if (before := query.get("before")) is not None:
        stop = _position(ordered, before, "before")
    window = ordered[start:stop]
    if before is not None and after is None:
        data, has_more = window[-limit:], len(window) > limit  # the page just before it
    else:
        data, has_more = window[:limit], len(window) > limit
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _limit(raw: str | None) -> int:
    if raw is not None and not _INTEGER.fullmatch(raw):  # int() would take "1_0" too
        raise invalid(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.",
            "limit",
            "invalid_type",
        )
    sent = {} if raw is None else {"limit": int(raw)}
    return int_param(sent, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT  # one at least, if sent


def _position(items: Sequence[Item], item_id: str, param: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == item_id:
            return index
    raise APIError(404, f"No input item with id '{item_id}' in this response.", param=param)
