"""Every recorded Responses stream in ../shared/wire gives the result its MANIFEST expects.

The streams are served byte for byte by the local server's replay backend over a real
loopback socket (sync, in several write sizes, and async), and fed to the pure
``ResponseEventStream`` one byte at a time.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream.engine._protocol import ResponseEventStream
from deltastream.engine.types import Response, UnknownEvent
from tests._wire import WIRE_DIR, manifest

MANIFEST = manifest()
RESPONSES = [c for c in MANIFEST["captures"] if c["api"] == "responses"]


def _ids(captures: list[dict[str, Any]]) -> list[str]:
    return [c["file"] for c in captures]


class Outcome:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.final: Response | None = None
        self.error: deltastream.native.APIError | None = None


def _check(capture: dict[str, Any], outcome: Outcome) -> None:
    expected = capture["expected"]
    assert not any(isinstance(e, UnknownEvent) for e in outcome.events)
    if expected["raise"] is not None:
        error = outcome.error
        assert isinstance(error, deltastream.native.APIStreamError), error
        assert error.message == expected["raise"]["message"]
        assert error.code == expected["raise"]["code"]
        assert error.type == expected["raise"]["type"]
        final = error.partial
    else:
        assert outcome.error is None, outcome.error
        final = outcome.final
    assert isinstance(final, Response)
    assert final.output_text == expected["output_text"]
    calls = [
        {"item_id": i.id, "call_id": i.call_id, "name": i.name, "arguments": i.arguments}
        for i in final.output
        if i.type == "function_call"
    ]
    assert calls == [
        {k: w[k] for k in ("item_id", "call_id", "name", "arguments")}
        for w in expected["function_calls"]
    ]
    reasoning = [i for i in final.output if i.type == "reasoning"]
    if "reasoning_text" in expected:
        text = "".join(p.text or "" for i in reasoning for p in i.content or ())
        assert text == expected["reasoning_text"]
    if "reasoning_summary" in expected:
        summary = [p.text for i in reasoning for p in i.summary or ()]
        assert summary == expected["reasoning_summary"]
    if "logprobs_tokens" in expected:
        parts = [p for i in final.output if i.type == "message" for p in i.content or ()]
        assert sum(len(p.logprobs or ()) for p in parts) == expected["logprobs_tokens"]
    if expected["raise"] is not None:
        return
    assert [i.type for i in final.output] == expected["output_item_types"]
    assert final.status == expected["status"]
    usage = expected["usage"]
    assert final.usage is not None
    assert final.usage.input_tokens == usage["input_tokens"]
    assert final.usage.output_tokens == usage["output_tokens"]
    assert final.usage.total_tokens == usage["total_tokens"]
    terminal = outcome.events[-1]
    assert terminal.type == expected["terminal_event"]
    assert terminal.to_dict()["response"]["usage"] == usage  # nothing lost


def _replay(base_url: str, capture: dict[str, Any], chunk_size: int | None) -> Outcome:
    headers = {"X-Deltastream-Chunk-Size": str(chunk_size)} if chunk_size else None
    outcome = Outcome()
    with deltastream.Client(base_url=base_url, api_key="x", max_retries=0) as client:
        try:
            with client.responses.create(
                model=capture["file"], input="hi", stream=True, extra_headers=headers
            ) as stream:
                for event in stream:
                    outcome.events.append(event)
                outcome.final = stream.get_final_response()
        except deltastream.native.APIError as exc:
            outcome.error = exc
    return outcome


@pytest.mark.parametrize("chunk_size", [None, 7, 4096])
@pytest.mark.parametrize("capture", RESPONSES, ids=_ids(RESPONSES))
def test_recorded_responses_stream_over_http(
    replay_url: str, capture: dict[str, Any], chunk_size: int | None
) -> None:
    _check(capture, _replay(replay_url, capture, chunk_size))


@pytest.mark.parametrize("capture", RESPONSES, ids=_ids(RESPONSES))
async def test_recorded_responses_stream_async(replay_url: str, capture: dict[str, Any]) -> None:
    outcome = Outcome()
    async with deltastream.AsyncClient(base_url=replay_url, api_key="x") as client:
        try:
            stream = await client.responses.create(model=capture["file"], stream=True)
            async with stream:
                async for event in stream:
                    outcome.events.append(event)
                outcome.final = await stream.get_final_response()
        except deltastream.native.APIError as exc:
            outcome.error = exc
    _check(capture, outcome)


@pytest.mark.parametrize("capture", RESPONSES, ids=_ids(RESPONSES))
def test_recorded_responses_stream_byte_by_byte(capture: dict[str, Any]) -> None:
    request = httpx2.Request("POST", "http://replay/v1/responses")
    core = ResponseEventStream(httpx2.Response(200, request=request))
    outcome = Outcome()
    data = (WIRE_DIR / capture["file"]).read_bytes()
    try:
        for i in range(len(data)):
            outcome.events.extend(core.feed(data[i : i + 1]))
            if core.done:
                break
        core.end()
        outcome.final = core.accumulator.snapshot()
    except deltastream.native.APIError as exc:
        outcome.error = exc
    _check(capture, outcome)
