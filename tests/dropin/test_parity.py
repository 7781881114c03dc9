"""Corners where a program's outcome depends on how the stream's end and its bad events
are read: the same bytes to openai's client and to the drop-in (httpx2's
MockTransport), and the same outcome."""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx2
import openai
import pytest

import deltastream
import deltastream.native

from .._raw_server import CHUNKED_HEAD, LAST_CHUNK, Reply, Seen, Serve, chunk
from .._wire import WIRE_DIR

CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}],
}
GOOD = f"data: {json.dumps(CHUNK)}\n\n".encode()


def client_of(cls: Any, body: bytes) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return cls(base_url="http://parity/v1", api_key="sk-test", http_client=http, max_retries=0)


def texts(cls: Any, body: bytes) -> list[str | None]:
    with client_of(cls, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        return [chunk.choices[0].delta.content for chunk in stream]


@pytest.mark.parametrize("done", [b"[DONE] ", b"[DONE]  ", b"[DONE]\t"])
def test_a_done_with_bytes_after_it_ends_the_stream_as_in_openai(done: bytes) -> None:
    body = GOOD + b"data: " + done + b"\n\n" + GOOD  # nothing after the end is read
    assert texts(openai.OpenAI, body) == ["a"]
    assert texts(deltastream.OpenAI, body) == ["a"]


def test_the_native_client_ends_there_too() -> None:
    body = GOOD + b"data: [DONE] \n\n"
    with client_of(deltastream.Client, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        assert [chunk.choices[0].delta.content for chunk in stream] == ["a"]


def test_malformed_json_is_a_json_decode_error_as_in_openai() -> None:
    body = GOOD + b"data: {not json\n\n"
    with pytest.raises(json.JSONDecodeError):
        texts(openai.OpenAI, body)
    with pytest.raises(json.JSONDecodeError) as caught:
        texts(deltastream.OpenAI, body)
    error: Any = caught.value
    assert isinstance(error, deltastream.StreamDecodeError)
    assert isinstance(error, openai.APIResponseValidationError)
    assert error.doc == "{not json"
    theirs: json.JSONDecodeError | None = None
    try:
        json.loads("{not json")
    except json.JSONDecodeError as exc:
        theirs = exc
    assert theirs is not None
    assert (error.msg, error.pos, error.lineno, error.colno) == (
        theirs.msg,
        theirs.pos,
        theirs.lineno,
        theirs.colno,
    )
    assert error.data == b"{not json"
    assert error.partial.choices[0].message.content == "a"
    assert "malformed JSON" in str(error)


def _decode_error_of(cls: Any, body: bytes) -> Any:
    try:
        texts(cls, body)
    except Exception as exc:  # compared below
        return exc
    raise AssertionError("no error")


def test_an_empty_event_is_a_json_decode_error_with_json_s_own_fields() -> None:
    body = GOOD + b"data:\n\n"
    theirs, ours = (_decode_error_of(cls, body) for cls in (openai.OpenAI, deltastream.OpenAI))
    assert isinstance(theirs, json.JSONDecodeError)
    assert isinstance(ours, deltastream.StreamDecodeError)
    assert (ours.msg, ours.pos, ours.lineno, ours.colno) == ("Expecting value", 0, 1, 1)
    assert (ours.msg, ours.pos) == (theirs.msg, theirs.pos)


def test_an_event_that_is_not_utf_8_is_a_unicode_decode_error_as_in_openai() -> None:
    body = GOOD + b'data: {"a": "\xff"}\n\n'
    theirs, ours = (_decode_error_of(cls, body) for cls in (openai.OpenAI, deltastream.OpenAI))
    assert isinstance(theirs, UnicodeDecodeError)
    assert isinstance(ours, UnicodeDecodeError)
    assert isinstance(ours, deltastream.StreamDecodeError)  # and so a JSONDecodeError too
    assert (ours.encoding, ours.reason) == (theirs.encoding, theirs.reason)
    assert ours.object[ours.start : ours.end] == b"\xff"
    assert ours.data == b'{"a": "\xff"}'
    assert "malformed JSON" in str(ours)
    assert ours.partial.choices[0].message.content == "a"


def dumps(cls: Any, body: bytes) -> list[dict[str, Any]]:
    with client_of(cls, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        return [chunk.model_dump() for chunk in stream]


def test_a_chunk_without_id_or_created_is_handed_out_as_openai_builds_it() -> None:
    """Some servers leave out ``id`` and ``created``: the chunk does not fit openai's
    schema, and both build it leniently, with the missing fields None."""
    sparse = {key: value for key, value in CHUNK.items() if key not in ("id", "created")}
    body = f"data: {json.dumps(sparse)}\n\ndata: [DONE]\n\n".encode()
    ours = dumps(deltastream.OpenAI, body)
    assert ours == dumps(openai.OpenAI, body)
    assert (ours[0]["id"], ours[0]["created"]) == (None, None)
    with client_of(deltastream.OpenAI, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        final = stream.get_final_completion()
    assert (final.id, final.created, final.choices[0].message.content) == (None, None, "a")


@pytest.mark.parametrize("error", [{}, "", False, 0, None])
def test_an_empty_error_field_is_not_an_error_report_as_in_openai(error: object) -> None:
    """openai raises only for a truthy top-level ``error``; so do both faces."""
    body = f"data: {json.dumps({**CHUNK, 'error': error})}\n\ndata: [DONE]\n\n".encode()
    assert texts(openai.OpenAI, body) == ["a"]
    assert texts(deltastream.OpenAI, body) == ["a"]
    with client_of(deltastream.Client, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        assert [chunk.choices[0].delta.content for chunk in stream] == ["a"]


def test_an_error_report_still_raises_on_both_faces() -> None:
    report = {**CHUNK, "error": {"message": "overloaded", "code": 529}}
    body = f"data: {json.dumps(report)}\n\ndata: [DONE]\n\n".encode()
    with pytest.raises(openai.APIError, match="overloaded"):
        texts(openai.OpenAI, body)
    with pytest.raises(deltastream.APIStreamError, match="overloaded"):
        texts(deltastream.OpenAI, body)
    with (
        client_of(deltastream.Client, body) as client,
        pytest.raises(deltastream.native.APIStreamError, match="overloaded"),
    ):
        list(client.chat.completions.create(model="m", messages=[], stream=True))


@pytest.mark.parametrize(
    "error",
    [
        {"message": "boom", "type": "server_error", "code": "c"},
        {"type": "server_error"},
        {"message": 42},
        {"message": ""},
        "overloaded",
        ["a"],
    ],
    ids=["message", "no-message", "number", "empty", "string", "list"],
)
def test_an_error_report_has_openais_message_and_body(error: object) -> None:
    body = f"data: {json.dumps({'error': error})}\n\ndata: [DONE]\n\n".encode()
    with pytest.raises(openai.APIError) as theirs:
        texts(openai.OpenAI, body)
    with pytest.raises(deltastream.APIStreamError) as ours:
        texts(deltastream.OpenAI, body)
    assert ours.value.message == theirs.value.message
    assert str(ours.value) == str(theirs.value)
    assert ours.value.body == theirs.value.body
    assert (ours.value.code, ours.value.type) == (theirs.value.code, theirs.value.type)


def test_a_lone_surrogate_escape_arrives_as_in_openai() -> None:
    """A server that splits an emoji's UTF-16 surrogate pair across two events sends
    each half as a lone escape: JSON that msgspec refuses and Python's parser (openai's)
    reads. Both faces hand the halves over."""
    halves = []
    for half in ("\\ud83d", "\\ude00"):
        event = json.dumps(CHUNK).replace('"content": "a"', f'"content": "{half}"')
        halves.append(f"data: {event}\n\n")
    body = ("".join(halves) + "data: [DONE]\n\n").encode()
    expected = ["\ud83d", "\ude00"]
    assert texts(openai.OpenAI, body) == expected
    assert texts(deltastream.OpenAI, body) == expected
    with client_of(deltastream.Client, body) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        chunks = list(stream)
        final = stream.current_snapshot.choices[0].message.content
    assert [chunk.choices[0].delta.content for chunk in chunks] == expected
    assert chunks[0].to_dict()["choices"][0]["delta"]["content"] == "\ud83d"
    assert final == "\ud83d\ude00"


def test_an_oversized_event_is_a_decode_error_that_says_so() -> None:
    """Past the 16 MiB limit the event is not kept, so there is nothing for
    ``json.loads`` to point into: ``msg`` is deltastream's own message."""
    body = GOOD + b"data: " + b"x" * (17 * 1024 * 1024) + b"\n\n"
    with pytest.raises(deltastream.StreamDecodeError) as caught:
        texts(deltastream.OpenAI, body)
    error: Any = caught.value
    assert "max_event_size" in error.msg
    assert error.msg == error.message
    assert (error.data, error.pos) == (b"", 0)
    assert error.partial.choices[0].message.content == "a"


@pytest.mark.parametrize("content_type", ["TEXT/Event-Stream", "Text/Event-Stream; charset=UTF-8"])
def test_an_event_stream_content_type_in_capitals_streams_as_in_openai(content_type: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = GOOD + b"data: [DONE]\n\n"
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)

    for cls in (openai.OpenAI, deltastream.OpenAI):
        http = httpx2.Client(transport=httpx2.MockTransport(handler))
        with cls(base_url="http://parity/v1", api_key="sk-test", http_client=http) as client:
            stream = client.chat.completions.create(model="m", messages=[], stream=True)
            assert [chunk.choices[0].delta.content for chunk in stream] == ["a"]


@pytest.mark.parametrize("end", [b"data: [DONE]", b"data: [DONE]\n", b"data: [DONE]\r\n"])
def test_a_done_without_its_blank_line_ends_the_stream_as_in_openai(end: bytes) -> None:
    body = GOOD + end
    assert texts(openai.OpenAI, body) == ["a"]
    assert texts(deltastream.OpenAI, body) == ["a"]
    assert texts(deltastream.Client, body) == ["a"]


@pytest.mark.parametrize("make", [deltastream.OpenAI, deltastream.Client])
def test_raw_events_end_at_a_done_without_its_blank_line_too(make: Any) -> None:
    with client_of(make, GOOD + b"data: [DONE]") as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        assert [event.data for event in stream.sse_events()] == [GOOD[6:-2].decode()]


def test_a_cut_off_event_that_is_not_done_still_raises() -> None:
    with pytest.raises(deltastream.StreamTruncatedError):
        texts(deltastream.OpenAI, GOOD + b"data: [DON")


def test_a_raw_responses_stream_that_is_not_an_event_stream_is_refused_at_parse() -> None:
    """with_raw_response leaves the body to the caller: the content type is checked
    when the stream is made from it, as a plain call's is when it is sent."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"hello": "world"})

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    with deltastream.OpenAI(base_url="http://parity/v1", api_key="k", http_client=http) as client:
        raw = client.chat.completions.with_raw_response.create(model="m", messages=[], stream=True)
        with pytest.raises(openai.APIResponseValidationError, match="application/json"):
            raw.parse()
        assert raw.http_response.read() == b'{"hello":"world"}'  # still the caller's
        streaming = client.chat.completions.with_streaming_response.create
        refused = pytest.raises(openai.APIResponseValidationError, match="application/json")
        with streaming(model="m", messages=[], stream=True) as response, refused:
            response.parse()


def _with_keepalive(recording: bytes, after: int) -> bytes:
    """A recorded Responses stream with OpenAI's keepalive event (sent while a model
    reasons in silence) after event ``after``, sequence numbers counted on through it."""
    blocks, number = [], 0
    for block in recording.split(b"\n\n"):
        data = [line[6:] for line in block.split(b"\n") if line.startswith(b"data: ")]
        if not data:
            continue
        event = json.loads(data[0])
        event["sequence_number"], number = number, number + 1
        blocks.append(f"event: {event['type']}\ndata: {json.dumps(event)}".encode())
        if len(blocks) == after + 1:
            keepalive = {"type": "keepalive", "sequence_number": number}
            blocks.append(f"event: keepalive\ndata: {json.dumps(keepalive)}".encode())
            number += 1
    return b"\n\n".join(blocks) + b"\n\n"


def test_a_keepalive_event_passes_through_a_responses_stream_as_in_openai() -> None:
    body = _with_keepalive((WIRE_DIR / "openai/responses-function-call.sse").read_bytes(), 2)
    results = []
    for cls in (openai.OpenAI, deltastream.OpenAI, deltastream.Client):
        with client_of(cls, body) as client:
            events = list(client.responses.create(model="m", input="hi", stream=True))
            assert [event.sequence_number for event in events] == list(range(len(events)))
            assert events[3].type == "keepalive"
            results.append([event.type for event in events])
        if cls is not deltastream.Client:
            with (
                client_of(cls, body) as client,
                client.responses.stream(model="m", input="hi") as s,
            ):
                assert s.get_final_response().status == "completed"
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (openai.AzureOpenAI, deltastream.AzureOpenAI),
        (openai.AsyncAzureOpenAI, deltastream.AsyncAzureOpenAI),
    ],
)
def test_an_azure_client_without_credentials_is_refused_when_built_as_in_openai(
    monkeypatch: pytest.MonkeyPatch, theirs: Any, ours: Any
) -> None:
    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    options = {"api_version": "2024-10-21", "base_url": "http://azure.local/openai"}
    with pytest.raises(openai.OpenAIError, match="credentials") as expected:
        theirs(**options)
    with pytest.raises(openai.OpenAIError) as caught:
        ours(**options)
    assert str(caught.value) == str(expected.value)


def test_an_openai_client_without_a_key_for_a_local_server_is_still_built() -> None:
    client = deltastream.OpenAI(base_url="http://127.0.0.1:9/v1")
    assert client.base_url.host == "127.0.0.1"


def _comments_while_thinking(before: bytes) -> Any:
    """A stream that sends ``before``, then a keep-alive comment every 0.1 s for 0.8 s
    (a server whose model is thinking), then an event and [DONE]."""

    def handler(seen: Seen) -> Reply:
        head = CHUNKED_HEAD.replace(b"text/plain", b"text/event-stream")
        steps: list[Any] = [head + (chunk(before) if before else b"")]
        for _ in range(8):
            steps += [0.1, chunk(b": PROCESSING\n\n")]
        return Reply([*steps, chunk(GOOD + b"data: [DONE]\n\n") + LAST_CHUNK])

    return handler


@pytest.mark.parametrize("before", [b"", GOOD], ids=["before-the-first-event", "mid-stream"])
@pytest.mark.parametrize("timeout", [0.4, httpx2.Timeout(0.4)], ids=["seconds", "httpx2"])
def test_openais_timeout_forms_count_comments_as_openais_per_read_timeout_does(
    serve: Serve, before: bytes, timeout: Any
) -> None:
    server = serve(_comments_while_thinking(before))
    expected = ["a", "a"] if before else ["a"]
    for cls in (openai.OpenAI, deltastream.OpenAI):
        url = f"{server.url}/v1"
        with cls(base_url=url, api_key="k", timeout=timeout, max_retries=0) as client:
            stream = client.chat.completions.create(model="m", messages=[], stream=True)
            assert [chunk.choices[0].delta.content for chunk in stream] == expected


def test_a_deltastream_timeout_keeps_its_own_rule_for_comments(serve: Serve) -> None:
    server = serve(_comments_while_thinking(GOOD))
    url = f"{server.url}/v1"
    timeout = deltastream.Timeout(0.4)
    with deltastream.OpenAI(base_url=url, api_key="k", timeout=timeout, max_retries=0) as client:
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        with pytest.raises(deltastream.DeadlineError) as caught:
            list(stream)
        assert caught.value.deadline == "idle"


_RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "model": "m",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "status": "in_progress",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "metadata": {},
}
_FAILED = {"status": "failed", "error": {"code": "server_error", "message": "boom"}}
_FLAT_ERROR = {"type": "error", "code": "server_error", "message": "boom", "param": None}


def _responses_body(*events: dict[str, Any]) -> bytes:
    numbered = [{**event, "sequence_number": n} for n, event in enumerate(events)]
    return b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in numbered
    )


_CREATED = {"type": "response.created", "response": _RESPONSE}
_FAILURE = {"type": "response.failed", "response": {**_RESPONSE, **_FAILED}}


@pytest.mark.parametrize(
    "events",
    [(_CREATED, _FAILURE), (_CREATED, _FLAT_ERROR), (_CREATED, _FLAT_ERROR, _FAILURE)],
    ids=["failed", "error", "error-then-failed"],
)
async def test_a_responses_failure_event_is_handed_over_without_raising_as_in_openai(
    events: tuple[dict[str, Any], ...],
) -> None:
    body = _responses_body(*events)
    seen = {}
    for cls in (openai.OpenAI, deltastream.OpenAI):
        with client_of(cls, body) as client:
            stream = client.responses.create(model="m", input="hi", stream=True)
            seen[cls] = [event.model_dump() for event in stream]
    assert seen[openai.OpenAI] == seen[deltastream.OpenAI]
    assert [event["type"] for event in seen[deltastream.OpenAI]] == [e["type"] for e in events]
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: _sse_response(body)))
    async with deltastream.AsyncOpenAI(base_url="http://p/v1", api_key="k", http_client=http) as ac:
        astream = await ac.responses.create(model="m", input="hi", stream=True)
        assert [event.model_dump() async for event in astream] == seen[openai.OpenAI]


def _sse_response(body: bytes) -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def test_an_error_event_with_an_error_object_still_raises_as_in_openai() -> None:
    nested = {"type": "error", "error": {"type": "server_error", "code": "x", "message": "boom"}}
    body = _responses_body(_CREATED, nested)
    for cls in (openai.OpenAI, deltastream.OpenAI):
        for helper in (False, True):
            seen, raised = _seen_until_raised(cls, body, helper=helper)
            assert isinstance(raised, openai.APIError)
            assert "boom" in str(raised)
            assert seen == ["response.created"], (cls, helper)  # the error event is not one


def _seen_until_raised(cls: Any, body: bytes, *, helper: bool) -> tuple[list[str], object]:
    seen: list[str] = []
    with client_of(cls, body) as client:
        try:
            if helper:
                with client.responses.stream(model="m", input="hi") as events:
                    seen.extend(event.type for event in events)
            else:
                stream = client.responses.create(model="m", input="hi", stream=True)
                seen.extend(event.type for event in stream)
        except Exception as exc:
            return seen, exc
    return seen, None


def test_the_native_client_raises_at_a_responses_failure() -> None:
    body = _responses_body(_CREATED, _FAILURE)
    with client_of(deltastream.Client, body) as client:
        stream = client.responses.create(model="m", input="hi", stream=True)
        with pytest.raises(deltastream.native.APIStreamError, match="boom"):
            list(stream)
        assert stream.events_received == 2


_ITEM = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "status": "in_progress",
    "content": [],
}
_DELTA = {
    "type": "response.output_text.delta",
    "output_index": 0,
    "item_id": "msg_1",
    "content_index": 0,
    "delta": "Hi",
    "logprobs": [],
}
_USAGE = {
    "input_tokens": 3,
    "output_tokens": 1,
    "total_tokens": 4,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens_details": {"reasoning_tokens": 0},
}


def _off_schema_events(case: str) -> list[dict[str, Any]]:
    created = {"type": "response.created", "response": {**_RESPONSE}}
    added = {"type": "response.output_item.added", "output_index": 0, "item": {**_ITEM}}
    part = {"type": "output_text", "text": "", "annotations": []}
    part_added = {
        "type": "response.content_part.added",
        "output_index": 0,
        "item_id": "msg_1",
        "content_index": 0,
        "part": part,
    }
    delta, second = {**_DELTA}, {**_DELTA, "delta": " there"}
    completed_response = {**_RESPONSE, "status": "completed", "usage": {**_USAGE}}
    completed = {"type": "response.completed", "response": completed_response}
    if case == "a null in usage":
        completed_response["usage"] = {**_USAGE, "input_tokens": None}
    elif case == "a date as a string":
        created["response"] = {**_RESPONSE, "created_at": "2025-01-01T00:00:00Z"}
    elif case == "a null delta":
        delta["delta"] = None
    elif case == "a number as a delta":
        delta["delta"] = 7
    elif case == "a null output":
        completed_response["output"] = None
    return [created, added, part_added, delta, second, completed]


_OFF_SCHEMA = ["a null in usage", "a date as a string", "a null delta", "a number as a delta"]


@pytest.mark.parametrize("case", [*_OFF_SCHEMA, "a null output"])
def test_a_responses_event_with_a_field_of_the_wrong_type_arrives_as_in_openai(case: str) -> None:
    """openai builds such an event leniently and reads on; the engine's types refuse
    it, so it accumulates the event without that field and hands openai's over."""
    events = _off_schema_events(case)
    body = _responses_body(*events)
    seen = {}
    for cls in (openai.OpenAI, deltastream.OpenAI):
        with client_of(cls, body) as client:
            stream = client.responses.create(model="m", input="hi", stream=True)
            seen[cls] = [event.model_dump(warnings=False) for event in stream]
    assert seen[deltastream.OpenAI] == seen[openai.OpenAI]
    assert [event["type"] for event in seen[deltastream.OpenAI]] == [e["type"] for e in events]
    helped = {cls: _helper_outcome(cls, body) for cls in (openai.OpenAI, deltastream.OpenAI)}
    assert helped[deltastream.OpenAI] == helped[openai.OpenAI]


def _helper_outcome(cls: Any, body: bytes) -> tuple[list[str], object]:
    """The events of ``responses.stream()`` and its final response, or what it raised
    (openai's own helper checks the events' lifecycle, on both clients)."""
    kinds: list[str] = []
    with client_of(cls, body) as client:
        try:
            with client.responses.stream(model="m", input="hi") as helper:
                kinds.extend(event.type for event in helper)
                return kinds, helper.get_final_response().model_dump(warnings=False)
        except Exception as exc:  # compared, not hidden
            return kinds, (type(exc), str(exc))


def test_the_native_client_refuses_a_responses_event_with_a_field_of_the_wrong_type() -> None:
    body = _responses_body(*_off_schema_events("a null delta"))
    with client_of(deltastream.Client, body) as client:
        stream = client.responses.create(model="m", input="hi", stream=True)
        with pytest.raises(deltastream.native.StreamDecodeError, match="delta"):
            list(stream)


_PLAIN_CHOICE = {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}


def _off_schema_choices() -> dict[str, list[object]]:
    """Chunks' choices with a value off openai's schema where the accumulator looks."""
    cases: dict[str, list[object]] = {"a choice that is a number": [5]}
    off_choice: dict[str, list[object]] = {
        "delta": [[], "x", 5, True],
        "logprobs": [[], "", 5, {"content": "x"}, {"content": [5]}, {"refusal": 3}],
        "finish_reason": [5, []],
        "index": ["0", None, 1.5, 0.0, []],
    }
    for key, values in off_choice.items():
        for value in values:
            cases[f"{key}={value!r}"] = [{**_PLAIN_CHOICE, key: value}]
    off_delta: dict[str, list[object]] = {
        "tool_calls": [
            {},
            "x",
            [5],
            [{"index": 0, "function": 5}],
            [{"index": 0, "function": {"arguments": 5}}],
            [{"index": "a", "function": {"arguments": "{}"}}],
        ],
        "content": [5, {"a": 1}, [5]],
        "refusal": [5],
        "function_call": [5, {"name": 5}, {"name": "f", "arguments": 5}],
        "reasoning_content": [5],
        "role": [["assistant"], {"a": 1}],
    }
    for key, values in off_delta.items():
        for value in values:
            cases[f"delta.{key}={value!r}"] = [
                {**_PLAIN_CHOICE, "delta": {"content": "hi", key: value}}
            ]
    return cases


@pytest.mark.parametrize("choices", _off_schema_choices().values(), ids=_off_schema_choices())
def test_a_chunk_off_the_schema_is_handed_over_as_openai_hands_it(choices: list[object]) -> None:
    """openai builds each chunk as sent and hands it over; the drop-in must too, though
    its accumulator reads every chunk (nothing the accumulator cannot read raises)."""
    assert _chunks_seen({"choices": choices}) is not None


@pytest.mark.parametrize(
    "fields",
    [{"model": ["m"]}, {"model": {"a": 1}}, {"created": 1.0}, {"id": 5}, {"usage": 5}],
    ids=repr,
)
def test_a_chunk_with_its_own_fields_off_the_schema_is_handed_over_as_openai_hands_it(
    fields: dict[str, object],
) -> None:
    assert _chunks_seen({"choices": [_PLAIN_CHOICE], **fields}) is not None


def _chunks_seen(first: dict[str, object]) -> list[str]:
    """The chunks of a stream whose first chunk has ``first``'s fields, as openai and
    the drop-in hand them over (asserted equal), as their reprs."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    last = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    body = b"".join(
        b"data: " + json.dumps(event).encode() + b"\n\n" for event in ({**chunk, **first}, last)
    )
    body += b"data: [DONE]\n\n"
    seen = {}
    for cls in (openai.OpenAI, deltastream.OpenAI):
        with client_of(cls, body) as client:
            stream = client.chat.completions.create(model="m", messages=[], stream=True)
            seen[cls] = [repr(chunk) for chunk in stream]
    assert seen[deltastream.OpenAI] == seen[openai.OpenAI]
    assert len(seen[openai.OpenAI]) == 2
    return seen[openai.OpenAI]


def _chat_helper_outcome(cls: Any, body: bytes) -> tuple[list[str], object]:
    kinds: list[str] = []
    with client_of(cls, body) as client:
        try:
            with client.chat.completions.stream(model="m", messages=[]) as helper:
                kinds.extend(event.type for event in helper)
                return kinds, repr(helper.get_final_completion().choices[0].message)
        except Exception as exc:  # compared, not hidden
            return kinds, type(exc)


@pytest.mark.parametrize("choices", _off_schema_choices().values(), ids=_off_schema_choices())
def test_the_chat_helper_meets_a_chunk_off_the_schema_as_openais_does(
    choices: list[object],
) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    last = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    events = ({**chunk, "choices": choices}, last)
    body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)
    body += b"data: [DONE]\n\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic's, when openai's helper dumps them
        outcomes = {
            cls: _chat_helper_outcome(cls, body) for cls in (openai.OpenAI, deltastream.OpenAI)
        }
    assert outcomes[deltastream.OpenAI] == outcomes[openai.OpenAI]


@pytest.mark.parametrize("number", ["three", 3.5, [3], True, None, "missing"], ids=repr)
def test_a_responses_event_whose_sequence_number_is_unreadable_is_no_gap(number: object) -> None:
    """openai hands it over; the engine takes it for the next number, so the event
    after it is not a jump (which would raise StreamGapError). The same for a number
    that is null or left out."""
    events = _off_schema_events("none")
    numbered: list[dict[str, Any]] = [
        {**event, "sequence_number": n} for n, event in enumerate(events)
    ]
    numbered[3]["sequence_number"] = number
    if number == "missing":
        del numbered[3]["sequence_number"]
    body = b"".join(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in numbered
    )
    seen = {}
    for cls in (openai.OpenAI, deltastream.OpenAI):
        with client_of(cls, body) as client:
            stream = client.responses.create(model="m", input="hi", stream=True)
            seen[cls] = [event.type for event in stream]
    assert seen[deltastream.OpenAI] == seen[openai.OpenAI] == [e["type"] for e in events]


def test_a_responses_event_with_a_wrong_item_in_a_list_arrives_as_in_openai() -> None:
    events = _off_schema_events("none")
    events[-1]["response"]["output"] = [5]
    body = _responses_body(*events)
    seen = {}
    for cls in (openai.OpenAI, deltastream.OpenAI):
        with client_of(cls, body) as client:
            stream = client.responses.create(model="m", input="hi", stream=True)
            seen[cls] = [event.model_dump(warnings=False) for event in stream]
    assert seen[deltastream.OpenAI] == seen[openai.OpenAI]


@pytest.mark.parametrize(
    "failing",
    [
        {**_DELTA, "error": {"message": "boom", "code": "x"}},
        {**_FAILURE, "error": {"message": "boom"}},
    ],
    ids=["a delta", "response.failed"],
)
def test_any_responses_event_with_an_error_object_raises_as_in_openai(
    failing: dict[str, Any],
) -> None:
    body = _responses_body(_CREATED, failing)
    for cls in (openai.OpenAI, deltastream.OpenAI):
        seen, raised = _seen_until_raised(cls, body, helper=False)
        assert isinstance(raised, openai.APIError), cls
        assert raised.message == "boom"
        assert raised.body == failing["error"]
        assert seen == ["response.created"]


def test_a_tool_call_without_an_index_is_handed_over_as_sent() -> None:
    """Mistral sends none: openai's chunk has no ``index`` then, and nor has the drop-in's
    (its accumulator numbers such calls itself)."""
    call = {"id": "call_1", "function": {"name": "f", "arguments": "{}"}}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    delta = {"role": "assistant", "content": None, "tool_calls": [call]}
    first = {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": "tool_calls"}]}
    body = b"data: " + json.dumps(first).encode() + b"\n\ndata: [DONE]\n\n"
    sent = {}
    for cls in (openai.OpenAI, deltastream.OpenAI):
        with client_of(cls, body) as client:
            stream = client.chat.completions.create(model="m", messages=[], stream=True)
            sent[cls] = [item.to_dict() for item in stream]
    assert sent[deltastream.OpenAI] == sent[openai.OpenAI]
    assert "index" not in sent[deltastream.OpenAI][0]["choices"][0]["delta"]["tool_calls"][0]
