"""The Responses API: event decoding, accumulation, and ``client.responses``."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream.engine._accumulate import ResponseAccumulator
from deltastream.engine._decode import (
    EventDecodeError,
    decode_chat_event,
    decode_response_event,
    repair_response_event,
)
from deltastream.engine.types import (
    Response,
    ResponseCompletedEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
    UnknownEvent,
)

from ._helpers import MODES, async_client, event_stream, sse_body, sync_client

RESP: dict[str, Any] = {"id": "resp_1", "object": "response", "model": "m", "output": []}
USAGE = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}


def ev(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


def lifecycle(kind: str, **response: Any) -> dict[str, Any]:
    return ev(kind, response={**RESP, **response})


def message_events(text: list[str], *, index: int = 0) -> list[dict[str, Any]]:
    where = {"item_id": "msg_1", "output_index": index, "content_index": 0}
    item = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
    return [
        ev("response.output_item.added", output_index=index, item=item),
        *(ev("response.output_text.delta", delta=d, **where) for d in text),
    ]


def body(*events: dict[str, Any]) -> bytes:
    return sse_body(*events, done=False)


def decode(payload: dict[str, Any]) -> ResponseStreamEvent:
    return decode_response_event(json.dumps(payload).encode())


def accumulate(*events: dict[str, Any]) -> Response:
    acc = ResponseAccumulator()
    for event in events:
        acc.add(decode(event))
    return acc.snapshot()


# -- decoding --------------------------------------------------------------------------


def test_events_decode_into_their_class_in_one_pass() -> None:
    event = decode(ev("response.output_text.delta", delta="hi", output_index=0))
    assert isinstance(event, ResponseTextDeltaEvent)
    assert (event.type, event.delta, event.output_index) == ("response.output_text.delta", "hi", 0)
    assert event.sequence_number is None
    assert event.item_id is None
    progress = decode(ev("response.web_search_call.searching", item_id="ws", output_index=1))
    assert type(progress).__name__ == "ResponseWebSearchCallSearchingEvent"
    assert progress.type == "response.web_search_call.searching"


def test_an_unknown_event_type_keeps_its_json() -> None:
    payload = ev("response.future_thing.delta", sequence_number=9, x={"y": [1]})
    event = decode(payload)
    assert isinstance(event, UnknownEvent)
    assert (event.type, event.sequence_number, event.data) == (payload["type"], 9, payload)
    assert event.to_dict() == payload


def test_type_given_only_by_the_event_field_is_used() -> None:
    event = decode_response_event(b'{"delta":"x"}', "response.output_text.delta")
    assert isinstance(event, ResponseTextDeltaEvent)
    assert event.delta == "x"
    assert isinstance(decode_response_event(b'{"a":1}'), UnknownEvent)


def test_known_events_of_a_loose_shape_are_converted_and_bad_json_raises() -> None:
    event = decode(ev("response.output_text.delta", delta="x", output_index="2"))
    assert isinstance(event, ResponseTextDeltaEvent)
    assert event.output_index == 2
    with pytest.raises(EventDecodeError):
        decode(ev("response.output_text.delta", delta={"not": "text"}))
    with pytest.raises(EventDecodeError):
        decode_response_event(b'{"type": "response.output_text.delta", ')
    for bad_utf8 in (b'{"type": "zz", "x": "\xe4\xbd"}', b'{"type": "error", "message": "\xff"}'):
        with pytest.raises(EventDecodeError):
            decode_response_event(bad_utf8)


def test_unknown_fields_survive_to_dict() -> None:
    payload = lifecycle("response.created", status="queued", brand_new={"k": 1})
    assert decode(payload).to_dict() == payload


def test_decoded_objects_keep_their_json_in_a_slot_and_are_not_tracked_by_the_gc() -> None:
    """A stream makes one of these per event: a __dict__ each would cost more than the
    object, and each would count towards the cyclic collector's next pass."""
    chunk = decode_chat_event(
        b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[],"x_new":1}'
    )
    payload = lifecycle("response.created", status="queued")
    for decoded in (chunk, decode(payload)):
        assert not hasattr(decoded, "__dict__")
        assert not gc.is_tracked(decoded)
    assert chunk.to_dict()["x_new"] == 1


# -- accumulation ----------------------------------------------------------------------


def test_text_and_usage_accumulate_from_a_stream_starting_at_queued() -> None:
    final = accumulate(
        lifecycle("response.queued", status="queued", background=True),
        *message_events(["Hel", "lo"]),
        lifecycle("response.completed", status="completed", usage=USAGE),
    )
    assert final.status == "completed"
    assert final.output_text == "Hello"
    assert final.usage is not None
    assert final.usage.total_tokens == 5


def test_items_without_output_index_are_found_by_item_id() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": ""}
    msg = {"type": "message", "id": "m_1", "content": []}
    final = accumulate(
        ev("response.output_item.added", item=msg),
        ev("response.output_item.added", item=call),
        ev("response.function_call_arguments.delta", item_id="fc_1", delta='{"a"'),
        ev("response.output_text.delta", item_id="m_1", delta="hi"),
        ev("response.function_call_arguments.delta", item_id="fc_1", delta=":1}"),
    )
    assert [i.type for i in final.output] == ["message", "function_call"]
    assert final.output_text == "hi"
    assert final.output[1].arguments == '{"a":1}'
    assert final.status == "in_progress"


def test_values_without_deltas_come_from_done_events_and_items() -> None:
    call = {"type": "function_call", "id": "fc", "name": "f", "arguments": '{"x":2}'}
    final = accumulate(
        ev("response.output_item.added", output_index=0, item={"type": "message"}),
        ev("response.output_text.done", output_index=0, content_index=0, text="whole"),
        ev("response.output_item.done", output_index=1, item=call),
        ev("response.refusal.delta", output_index=2, content_index=0, delta="no"),
    )
    assert final.output_text == "whole"
    assert final.output[1].arguments == '{"x":2}'
    content = final.output[2].content
    assert content is not None
    assert content[0].type == "refusal"
    assert content[0].refusal == "no"


def test_reasoning_text_and_summary_accumulate() -> None:
    where = {"item_id": "rs", "output_index": 0}
    final = accumulate(
        ev("response.output_item.added", item={"type": "reasoning", "id": "rs"}, output_index=0),
        ev("response.reasoning_text.delta", content_index=0, delta="th", **where),
        ev("response.reasoning_text.delta", content_index=0, delta="ink", **where),
        ev("response.reasoning_summary_part.added", summary_index=0, **where),
        ev("response.reasoning_summary_text.delta", summary_index=0, delta="S1", **where),
        ev("response.reasoning_summary_text.delta", summary_index=1, delta="S2", **where),
    )
    item = final.output[0]
    assert item.content is not None
    assert item.content[0].text == "think"
    assert item.content[0].type == "reasoning_text"
    assert [p.text for p in item.summary or ()] == ["S1", "S2"]


def test_annotations_and_logprobs_accumulate() -> None:
    where = {"item_id": "m", "output_index": 0, "content_index": 0}
    final = accumulate(
        ev("response.output_text.delta", delta="a", logprobs=[{"token": "a"}], **where),
        ev("response.output_text.annotation.added", annotation={"url": "u"}, **where),
    )
    content = final.output[0].content
    assert content is not None
    (part,) = content
    assert part.logprobs == [{"token": "a"}]
    assert part.annotations == [{"url": "u"}]


# -- client.responses ------------------------------------------------------------------


async def _collect(
    mode: str, handler: Any, **create: Any
) -> tuple[list[ResponseStreamEvent], Response]:
    create.setdefault("model", "m")
    if mode == "sync":
        with sync_client(handler).responses.create(stream=True, **create) as stream:
            events = list(stream)
            return events, stream.get_final_response()
    astream = await async_client(handler).responses.create(stream=True, **create)
    async with astream:
        events = [e async for e in astream]
        return events, await astream.get_final_response()


@pytest.mark.parametrize("mode", MODES)
async def test_create_streams_typed_events_to_the_terminal_one(mode: str) -> None:
    seen: list[httpx2.Request] = []
    events = [
        lifecycle("response.created", status="in_progress"),
        *message_events(["Hi", "!"]),
        ev("response.brand_new", x=1),
        lifecycle("response.completed", status="completed", usage=USAGE),
        ev("response.output_text.delta", output_index=0, delta="after the end"),
    ]

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return event_stream(body(*events), piece=5)

    got, final = await _collect(mode, handler, input="hello", tools=iter([{"type": "x"}]))
    assert [e.type for e in got][-2:] == ["response.brand_new", "response.completed"]
    assert isinstance(got[-2], UnknownEvent)
    assert final.output_text == "Hi!"
    assert final.status == "completed"
    (request,) = seen
    assert str(request.url) == "http://testserver/v1/responses"
    assert json.loads(request.content) == {
        "model": "m",
        "input": "hello",
        "tools": [{"type": "x"}],
        "stream": True,
    }


@pytest.mark.parametrize("mode", MODES)
async def test_incomplete_is_terminal_and_done_ends_a_stream(mode: str) -> None:
    incomplete = lifecycle(
        "response.incomplete", status="incomplete", incomplete_details={"reason": "max_tokens"}
    )
    _, final = await _collect(mode, lambda _: event_stream(body(incomplete)))
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_tokens"
    done = sse_body(*message_events(["x"]), done=True)
    _, final = await _collect(mode, lambda _: event_stream(done))
    assert final.output_text == "x"


@pytest.mark.parametrize("mode", MODES)
async def test_a_body_without_a_terminal_event_is_truncated(mode: str) -> None:
    payload = body(lifecycle("response.created"), *message_events(["par", "tial"]))
    with pytest.raises(deltastream.native.StreamTruncatedError) as info:
        await _collect(mode, lambda _: event_stream(payload))
    assert isinstance(info.value.partial, Response)
    assert info.value.partial.output_text == "partial"
    assert info.value.events_received == 4


@pytest.mark.parametrize("mode", MODES)
async def test_response_failed_raises_with_the_partial_response(mode: str) -> None:
    failed = lifecycle(
        "response.failed", status="failed", error={"code": "server_error", "message": "boom"}
    )
    payload = body(*message_events(["so far"]), failed)
    with pytest.raises(deltastream.native.APIStreamError) as info:
        await _collect(mode, lambda _: event_stream(payload))
    error = info.value
    assert (error.message, error.code, error.type) == ("boom", "server_error", "response.failed")
    assert error.partial.status == "failed"
    assert error.partial.output_text == "so far"


@pytest.mark.parametrize("mode", MODES)
async def test_a_flat_error_event_raises(mode: str) -> None:
    payload = b'event: error\ndata: {"code": 429, "message": "slow down"}\n\n'
    with pytest.raises(deltastream.native.APIStreamError) as info:
        await _collect(mode, lambda _: event_stream(payload))
    assert (info.value.message, info.value.code) == ("slow down", "429")
    assert info.value.partial.error.message == "slow down"


def test_text_deltas_and_metrics_on_a_responses_stream() -> None:
    events = [*message_events(["a", "b"]), lifecycle("response.completed", usage=USAGE)]
    client = sync_client(lambda _: event_stream(body(*events)))
    with client.responses.create(model="m", stream=True) as stream:
        assert list(stream.text_deltas()) == ["a", "b"]
        assert stream.metrics.completion_tokens == 2
        assert stream.metrics.first_token_at is not None


async def test_async_text_deltas_on_a_responses_stream() -> None:
    call = ev("response.function_call_arguments.delta", output_index=1, delta="{}")
    events = [*message_events(["a", "b"]), call, lifecycle("response.completed")]
    client = async_client(lambda _: event_stream(body(*events)))
    stream = await client.responses.create(model="m", stream=True)
    async with stream:
        assert [d async for d in stream.text_deltas()] == ["a", "b"]
    assert stream.current_response.output[1].arguments == "{}"
    assert isinstance(stream.current_response, Response)


@pytest.mark.parametrize("mode", MODES)
async def test_create_without_stream_and_cancel_return_a_response(mode: str) -> None:
    seen: list[httpx2.Request] = []
    whole = {
        **RESP,
        "status": "completed",
        "extra": 1,
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "done"}]}],
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=whole)

    if mode == "sync":
        client = sync_client(handler)
        results = [client.responses.create(model="m", input="x"), client.responses.cancel("r/1")]
    else:
        aclient = async_client(handler)
        results = [
            await aclient.responses.create(model="m", input="x"),
            await aclient.responses.cancel("r/1"),
        ]
    for result in results:
        assert result.output_text == "done"
        assert result.to_dict() == whole
    assert [(r.method, str(r.url)) for r in seen] == [
        ("POST", "http://testserver/v1/responses"),
        ("POST", "http://testserver/v1/responses/r%2F1/cancel"),
    ]
    assert seen[1].content == b""


RESUME_ID = "resp_0850765c843cca5300699cc47d93c0819089a181f5feeff8eb"


def test_retrieve_streams_from_a_cursor_over_the_replay_server(replay_url: str) -> None:
    with deltastream.Client(base_url=replay_url, api_key="x") as client:
        with client.responses.retrieve(RESUME_ID, stream=True, starting_after=6) as stream:
            events = list(stream)
            final = stream.get_final_response()
        whole = client.responses.retrieve(RESUME_ID)
    numbers = [e.sequence_number or 0 for e in events]
    assert numbers[0] == 7
    assert numbers == sorted(numbers)
    assert final.status == "completed"
    assert whole.output_text == "2 + 2 equals 4."
    assert final.output_text == " 2 equals 4."  # the deltas after the cursor only


async def test_async_retrieve_over_the_replay_server(replay_url: str) -> None:
    async with deltastream.AsyncClient(base_url=replay_url, api_key="x") as client:
        stream = await client.responses.retrieve(RESUME_ID, stream=True, starting_after=0)
        async with stream:
            final = await stream.get_final_response()
        whole = await client.responses.retrieve(RESUME_ID)
    assert final.output_text == whole.output_text == "2 + 2 equals 4."
    with (
        deltastream.Client(base_url=replay_url, api_key="x") as sync,
        pytest.raises(deltastream.native.NotFoundError),
    ):
        sync.responses.retrieve("nope")


# -- resuming background streams -------------------------------------------------------

RESUME_FILE = "openai/responses-background-resume.sse"
DROP = {"X-Deltastream-Fault": "drop-after=4"}


def test_a_dropped_background_stream_resumes_from_the_cursor(replay_url: str) -> None:
    with (
        deltastream.Client(base_url=replay_url, api_key="x", max_retries=5) as client,
        client.responses.create(
            model=RESUME_FILE, stream=True, background=True, extra_headers=DROP
        ) as stream,
    ):
        numbers = [e.sequence_number for e in stream]
        final = stream.get_final_response()
    assert numbers == list(range(1, 17))  # every event once, in order
    assert final.output_text == "2 + 2 equals 4."
    assert final.status == "completed"
    assert stream.metrics.resumes == 3


async def test_a_dropped_background_stream_resumes_async(replay_url: str) -> None:
    async with deltastream.AsyncClient(base_url=replay_url, api_key="x", max_retries=5) as client:
        stream = await client.responses.create(
            model=RESUME_FILE, stream=True, background=True, extra_headers=DROP
        )
        async with stream:
            numbers = [e.sequence_number async for e in stream]
        final = await stream.get_final_response()
    assert numbers == list(range(1, 17))
    assert final.output_text == "2 + 2 equals 4."


def test_resumes_stop_at_max_retries_and_keep_what_arrived(replay_url: str) -> None:
    with deltastream.Client(base_url=replay_url, api_key="x", max_retries=1) as client:
        stream = client.responses.create(
            model=RESUME_FILE, stream=True, background=True, extra_headers=DROP
        )
        with pytest.raises(deltastream.native.APIConnectionError) as info, stream:
            list(stream)
        assert info.value.partial.output_text == "2 + 2"
        assert stream.metrics.resumes == 1
        # Without background=True a drop is not resumed.
        stream = client.responses.create(model=RESUME_FILE, stream=True, extra_headers=DROP)
        with pytest.raises(deltastream.native.APIConnectionError), stream:
            list(stream)
        assert stream.metrics.resumes == 0


@pytest.mark.parametrize("mode", MODES)
async def test_events_sent_again_after_a_resume_are_not_delivered_twice(mode: str) -> None:
    def numbered(start: int, stop: int) -> list[dict[str, Any]]:
        where = {"output_index": 0, "content_index": 0}
        return [
            ev("response.output_text.delta", sequence_number=n, delta=str(n), **where)
            for n in range(start, stop)
        ]

    first = body({**lifecycle("response.created"), "sequence_number": 0}, *numbered(1, 4))
    again = body(*numbered(2, 6), {**lifecycle("response.completed"), "sequence_number": 6})
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return event_stream(first if request.method == "POST" else again)

    events, final = await _collect(mode, handler, background=True)
    assert [e.sequence_number for e in events] == list(range(7))
    assert final.output_text == "12345"
    assert str(seen[1].url) == (
        "http://testserver/v1/responses/resp_1?stream=true&starting_after=3"
    )
    assert seen[1].method == "GET"


def test_a_retrieved_stream_resumes_with_its_own_id() -> None:
    part = {"output_index": 0, "content_index": 0}
    bodies = iter(
        [
            body(ev("response.output_text.delta", sequence_number=5, delta="a", **part)),
            body({**lifecycle("response.completed"), "sequence_number": 6}),
        ]
    )
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return event_stream(next(bodies))

    client = sync_client(handler)
    with client.responses.retrieve("resp_9", stream=True, starting_after=4) as stream:
        assert [e.sequence_number for e in stream] == [5, 6]
    assert seen == [
        "http://testserver/v1/responses/resp_9?stream=true&starting_after=4",
        "http://testserver/v1/responses/resp_9?stream=true&starting_after=5",
    ]


async def _read_into(mode: str, handler: Any, out: list[ResponseStreamEvent]) -> None:
    """Read a Responses stream into ``out`` event by event (what arrived stays)."""
    if mode == "sync":
        for event in sync_client(handler).responses.create(model="m", stream=True):
            out.append(event)
        return
    astream = await async_client(handler).responses.create(model="m", stream=True)
    async for event in astream:
        out.append(event)


@pytest.mark.parametrize("mode", MODES)
async def test_a_jump_in_sequence_numbers_is_reported(mode: str) -> None:
    events = [lifecycle("response.created"), *message_events(["a", "b", "c"])]
    numbered = [{**e, "sequence_number": n} for n, e in enumerate(events)]
    del numbered[2]  # the event with sequence_number 2 is lost
    payload = body(*numbered, {**lifecycle("response.completed"), "sequence_number": 4})
    delivered: list[ResponseStreamEvent] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        return event_stream(payload)

    with pytest.raises(deltastream.native.StreamGapError) as info:
        await _read_into(mode, handler, delivered)
    assert (info.value.expected, info.value.received) == (2, 3)
    assert isinstance(info.value, deltastream.native.APIConnectionError)
    assert [e.sequence_number for e in delivered] == [0, 1]  # handed over before the gap
    assert isinstance(info.value.partial, Response)


@pytest.mark.parametrize("mode", MODES)
async def test_an_unnumbered_event_in_a_numbered_stream_is_no_gap(mode: str) -> None:
    events = [lifecycle("response.created"), *message_events(["a", "b", "c"])]
    numbered = [{**e, "sequence_number": n} for n, e in enumerate(events)]
    del numbered[2]["sequence_number"]  # sent without one: not lost
    completed = {**lifecycle("response.completed"), "sequence_number": len(events)}
    payload = body(*numbered, completed)
    delivered: list[ResponseStreamEvent] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        return event_stream(payload)

    await _read_into(mode, handler, delivered)
    numbers = [e.sequence_number for e in delivered]
    assert numbers == [0, 1, None, *range(3, len(events) + 1)]  # as sent


def test_a_field_of_the_wrong_type_is_left_out_by_the_repair_and_nothing_else() -> None:
    usage = {"input_tokens": None, "output_tokens": 2, "total_tokens": 2}
    response = {"id": "r", "status": "completed", "usage": usage, "created_at": "today"}
    raw = json.dumps({"type": "response.completed", "response": response}).encode()
    with pytest.raises(EventDecodeError):
        decode_response_event(raw)
    event = repair_response_event(raw)
    assert isinstance(event, ResponseCompletedEvent)
    assert event.response.id == "r"
    assert event.response.status == "completed"
    assert event.response.usage is not None
    assert event.response.usage.output_tokens == 2
    assert event.to_dict() == json.loads(raw)  # as sent: what a face builds its event from


def test_a_wrong_item_of_a_list_takes_the_lists_field_out() -> None:
    raw = json.dumps({"type": "response.completed", "response": {"id": "r", "output": [5]}})
    event = repair_response_event(raw.encode())
    assert isinstance(event, ResponseCompletedEvent)
    assert (event.response.id, event.response.output) == ("r", [])
    nested = {"type": "response.completed", "response": {"output": [{"content": [7]}]}}
    repaired = repair_response_event(json.dumps(nested).encode())
    assert isinstance(repaired, ResponseCompletedEvent)
    assert len(repaired.response.output) == 1  # the item stays, without its content
    assert not repaired.response.output[0].content


@pytest.mark.parametrize(
    "raw",
    [b'["response.completed"]', b'"response.completed"', b'{"type": "response.completed", '],
    ids=["an array", "a string", "not JSON"],
)
def test_the_repair_refuses_what_leaving_a_field_out_cannot_mend(raw: bytes) -> None:
    with pytest.raises(EventDecodeError):
        repair_response_event(raw)
