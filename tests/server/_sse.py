"""A deliberately naive SSE parser for checking the server's bytes (not the client's)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(body: bytes) -> list[Event]:
    """Events of an LF-framed body; every block must end with a blank line."""
    text = body.decode("utf-8")
    assert text.endswith("\n\n"), text[-200:]
    events = []
    for block in text[:-2].split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            else:
                assert field == "", f"unexpected line {line!r}"
        events.append(Event(name, "\n".join(data)))
    return events


def chat_body(prompt: str = "Hello!", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4", "messages": [{"role": "user", "content": prompt}], **extra}
