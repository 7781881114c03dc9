"""Every recorded chat stream in ../shared/wire gives the result its MANIFEST expects.

The streams are served byte for byte by the local server's replay backend over a real
loopback socket (in several write sizes), and also fed to the pure ``ChunkStream`` one
byte at a time.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream.engine._protocol import ChunkStream
from deltastream.engine.types import ChatCompletion, ChatCompletionChunk
from tests._wire import WIRE_DIR, manifest

MANIFEST = manifest()
CHAT = [c for c in MANIFEST["captures"] if c["api"] == "chat.completions"]


def _ids(captures: list[dict[str, Any]]) -> list[str]:
    return [c["file"] for c in captures]


class Outcome:
    def __init__(self) -> None:
        self.chunks: list[ChatCompletionChunk] = []
        self.final: ChatCompletion | None = None
        self.error: deltastream.native.APIError | None = None

    @property
    def usage(self) -> Any:
        usage = None
        for chunk in self.chunks:
            raw = chunk.to_dict().get("usage")
            if raw is not None:
                usage = raw
        return usage


def _check(capture: dict[str, Any], outcome: Outcome) -> None:
    expected = capture["expected"]
    if expected["raise"] is not None:
        error = outcome.error
        assert isinstance(error, deltastream.native.APIStreamError), error
        assert error.message == expected["raise"]["message"]
        code = expected["raise"]["code"]
        assert error.code == (None if code is None else str(code))
        assert error.type == expected["raise"]["type"]
        final = error.partial
    else:
        assert outcome.error is None, outcome.error
        final = outcome.final
    assert isinstance(final, ChatCompletion)
    choices = {str(c.index): c for c in final.choices}
    assert set(choices) == set(expected["choices"])
    for index, want in expected["choices"].items():
        choice = choices[index]
        message = choice.message
        assert message.role == (want["role"] or "assistant")
        assert message.content == want["content"]
        assert choice.finish_reason == want["finish_reason"]
        for field in ("refusal", "reasoning_content", "reasoning", "thinking"):
            if field in want:
                assert getattr(message, field) == want[field], field
        calls = message.tool_calls or []
        assert [
            {
                "id": c.id,
                "type": c.type,
                "name": c.function.name,
                "arguments": c.function.arguments,
            }
            for c in calls
        ] == [
            {
                "id": w["id"],
                "type": w["type"] or "function",
                "name": w["name"],
                "arguments": w["arguments"],
            }
            for w in want["tool_calls"]
        ]
        if "logprobs" in want:
            logprobs = choice.logprobs
            assert logprobs is not None
            assert len(logprobs.content or []) == want["logprobs"]["content_tokens"]
            assert len(logprobs.refusal or []) == want["logprobs"]["refusal_tokens"]
    if expected["raise"] is None:
        assert outcome.usage == expected["usage"]
        if expected["usage"] is not None:
            assert final.usage is not None
            assert final.usage.total_tokens == expected["usage"]["total_tokens"]


def _replay(base_url: str, capture: dict[str, Any], chunk_size: int | None) -> Outcome:
    headers = {"X-Deltastream-Chunk-Size": str(chunk_size)} if chunk_size else None
    outcome = Outcome()
    with deltastream.Client(base_url=base_url, api_key="x", max_retries=0) as client:
        try:
            with client.chat.completions.create(
                model=capture["file"], messages=[], stream=True, extra_headers=headers
            ) as stream:
                for chunk in stream:
                    outcome.chunks.append(chunk)
                outcome.final = stream.current_snapshot
        except deltastream.native.APIError as exc:
            outcome.error = exc
    return outcome


@pytest.mark.parametrize("chunk_size", [None, 5, 4096])
@pytest.mark.parametrize("capture", CHAT, ids=_ids(CHAT))
def test_recorded_chat_stream_over_http(
    replay_url: str, capture: dict[str, Any], chunk_size: int | None
) -> None:
    _check(capture, _replay(replay_url, capture, chunk_size))


@pytest.mark.parametrize("capture", CHAT, ids=_ids(CHAT))
async def test_recorded_chat_stream_async(replay_url: str, capture: dict[str, Any]) -> None:
    outcome = Outcome()
    async with deltastream.AsyncClient(base_url=replay_url, api_key="x") as client:
        try:
            stream = await client.chat.completions.create(
                model=capture["file"], messages=[], stream=True
            )
            async with stream:
                async for chunk in stream:
                    outcome.chunks.append(chunk)
            outcome.final = stream.current_snapshot
        except deltastream.native.APIError as exc:
            outcome.error = exc
    _check(capture, outcome)


@pytest.mark.parametrize("capture", CHAT, ids=_ids(CHAT))
def test_recorded_chat_stream_byte_by_byte(capture: dict[str, Any]) -> None:
    request = httpx2.Request("POST", "http://replay/v1/chat/completions")
    core = ChunkStream(httpx2.Response(200, request=request))
    outcome = Outcome()
    data = (WIRE_DIR / capture["file"]).read_bytes()
    try:
        for i in range(len(data)):
            outcome.chunks.extend(core.feed(data[i : i + 1]))
        core.end()
        outcome.final = core.accumulator.snapshot()
    except deltastream.native.APIError as exc:
        outcome.error = exc
    _check(capture, outcome)
