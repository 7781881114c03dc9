"""Write a seed corpus for the atheris harness into the directory given (``make fuzz``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def chunk(delta: dict[str, object], **extra: object) -> bytes:
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
    body.update(extra)
    return json.dumps(body).encode()


SEEDS = {
    "content": b"data: " + chunk({"role": "assistant", "content": "h\xc3\xa9llo"}) + b"\n\n",
    "crlf": b"data: " + chunk({"content": "a"}) + b"\r\n\r\ndata: [DONE]\r\n\r\n",
    "cr": b": hi\rdata: " + chunk({"content": "a"}) + b"\r\rdata: [DONE]\r\r",
    "tools": b"data: "
    + chunk({"tool_calls": [{"index": 0, "id": "x", "function": {"name": "f", "arguments": "{"}}]})
    + b"\n\ndata: [DONE]\n\n",
    "parts": b"data: "
    + chunk({"content": [{"type": "text", "text": "a"}, {"type": "thinking", "thinking": "t"}]})
    + b"\n\n",
    "error": b'event: error\ndata: {"error": {"message": "boom", "code": 1}}\n\n',
    "usage": b"data: "
    + json.dumps({"choices": [], "usage": {"prompt_tokens": 1, "total_tokens": 2}}).encode()
    + b"\n\ndata: [DONE]\n\n",
    "multiline": b'data: {\ndata: "choices": []\ndata: }\n\n',
    "bom": b"\xef\xbb\xbfid: 1\nretry: 10\ndata: {}\n\n",
}

if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (out / name).write_bytes(b"\x00" + data)  # first byte: no cuts
