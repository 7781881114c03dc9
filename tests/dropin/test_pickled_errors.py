"""The drop-in's stream errors pickle and copy with what they carry (a multiprocessing
pool or a task queue sends errors between processes). openai's own errors do not
(BaseException's way calls the class with ``args`` alone); the ``UnicodeDecodeError``
openai raises for an event that is not UTF-8 does, and ours is one too."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

import deltastream

CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
GOOD = (
    b"data: "
    + json.dumps(
        {**CHUNK, "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
    ).encode()
    + b"\n\n"
)
BODIES = {
    "malformed": GOOD + b"data: {not json\n\n",
    "not UTF-8": GOOD + b'data: {"a": "\xff"}\n\n',
    "cut short": GOOD,
    "an error report": GOOD + b'data: {"error": {"message": "boom", "code": "x"}}\n\n',
}


def _raised(body: bytes) -> BaseException:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    with deltastream.OpenAI(base_url="http://p/v1", api_key="k", http_client=http) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        with pytest.raises(deltastream.StreamError) as caught:
            list(stream)
    return caught.value


ROUND_TRIPS: dict[str, Callable[[Any], Any]] = {
    "pickle": lambda error: pickle.loads(pickle.dumps(error)),
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES)
def test_a_stream_error_survives_pickling_and_copying(body: bytes, how: str) -> None:
    error: Any = _raised(body)
    again: Any = ROUND_TRIPS[how](error)
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.args == error.args
    assert again.message == error.message
    assert again.events_received == error.events_received == 1
    assert again.partial.choices[0].message.content == "a"
    for name in ("body", "data", "msg", "pos", "encoding", "object", "start", "end", "reason"):
        assert getattr(again, name, None) == getattr(error, name, None), name


def test_the_not_utf_8_error_stays_a_unicode_decode_error() -> None:
    error = _raised(BODIES["not UTF-8"])
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, UnicodeDecodeError)
    assert isinstance(again, deltastream.StreamDecodeError)
    assert again.object[again.start : again.end] == b"\xff"
