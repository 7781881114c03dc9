"""The Responses API on the generating backends (scripted, and llama with the shipped
model), over real sockets: event shapes as OpenAI's recordings, background responses
kept server-side, retrieve and resume, cancel, function tools, conversations."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

import deltastream
import deltastream.native
from deltastream.server import create_app, run_in_thread
from deltastream.server._errors import APIError
from deltastream.server.responses._build import ResponseBuilder
from deltastream.server.responses._request import validate_responses_request
from deltastream.server.responses._store import ResponseStore, StoredResponse

from ._sse import Event, parse_sse
from ._validator import validate
from .test_chat import WEATHER_TOOL

FUNCTION = {"type": "function", **WEATHER_TOOL["function"]}
IMAGE = {"type": "input_image", "image_url": "https://example.com/cat.png"}
WRAPPER_KEYS = {"type", "sequence_number"}


@pytest.fixture(params=["scripted", "llama"])
def url(request: pytest.FixtureRequest) -> str:
    """Each generating backend's server (the session's)."""
    if request.param == "llama":
        pytest.importorskip("llama_cpp")
    name = "server_url" if request.param == "scripted" else "llama_url"
    value: str = request.getfixturevalue(name)
    return value


@pytest.fixture
def slow_url() -> Iterator[str]:
    """A scripted server that takes 20 ms per event, so a response is still running."""
    with run_in_thread(create_app(tokens_per_second=50)) as base:
        yield base


def body(prompt: str = "Write a haiku about coding", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "input": prompt, "temperature": 0, "max_output_tokens": 16, **extra}


def post(http: httpx2.Client, url: str, request: dict[str, Any], **headers: str) -> Any:
    response = http.post(f"{url}/responses", json=request, headers=headers)
    assert response.status_code == 200, response.text
    return response


def events_of(response: httpx2.Response) -> list[dict[str, Any]]:
    parsed: list[Event] = parse_sse(response.content)
    for event in parsed:
        assert event.event == event.json()["type"]
    return [event.json() for event in parsed]


def recorded_keys(wire_dir: Path, name: str) -> dict[str, set[str]]:
    """Per event type, the keys OpenAI's recording carries (less its obfuscation pad)."""
    keys: dict[str, set[str]] = {}
    for event in parse_sse((wire_dir / name).read_bytes().replace(b"\n\n\n", b"\n\n")):
        payload = event.json()
        keys.setdefault(payload["type"], set(payload) - {"obfuscation"})
    return keys


def test_a_text_stream_has_openais_event_sequence(
    http: httpx2.Client, url: str, wire_dir: Path
) -> None:
    events = events_of(post(http, url, body(stream=True)))
    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert types[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    recorded = recorded_keys(wire_dir, "openai/responses-text.sse")
    recorded["response.incomplete"] = recorded["response.completed"]
    for event in events:
        assert set(event) == recorded[event["type"]], event["type"]
    item_id = events[2]["item"]["id"]
    assert all(e["item_id"] == item_id for e in events[3:-2])
    assert all(e["output_index"] == 0 for e in events[2:-1])
    final = events[-1]["response"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert final["output"][0]["content"][0]["text"] == text == events[-4]["text"]
    assert final["usage"]["output_tokens"] > 0
    # Every field openai's ResponseUsage requires, as OpenAI sends it now.
    assert final["usage"]["input_tokens_details"] == {"cache_write_tokens": 0, "cached_tokens": 0}
    openai.types.responses.ResponseUsage.model_validate(final["usage"])
    assert final["id"] == events[0]["response"]["id"]


def test_max_output_tokens_makes_the_response_incomplete(http: httpx2.Client, url: str) -> None:
    request = body("Write a story about a robot.", stream=True)
    events = events_of(post(http, url, request))
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["status"] == "incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["usage"]["output_tokens"] == 16
    whole = post(http, url, body("Write a story about a robot.")).json()
    assert whole["status"] == "incomplete"


def test_function_tools(http: httpx2.Client, url: str, wire_dir: Path) -> None:
    request = body("What's the weather in Tokyo?", tools=[FUNCTION], tool_choice="required")
    request["max_output_tokens"] = 40
    events = events_of(post(http, url, {**request, "stream": True}))
    types = [e["type"] for e in events]
    assert types[2] == "response.output_item.added"
    assert events[2]["item"]["type"] == "function_call"
    assert events[2]["item"]["name"] == "get_weather"
    assert events[2]["item"]["call_id"].startswith("call_")
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    arguments = json.loads("".join(deltas))
    assert validate(arguments, FUNCTION["parameters"]) == []
    assert events[-3]["arguments"] == "".join(deltas)
    recorded = recorded_keys(wire_dir, "openai/responses-function-call.sse")
    for event in events[2:-1]:
        assert set(event) - WRAPPER_KEYS <= recorded[event["type"]], event["type"]


def test_each_tools_strict_flag_is_echoed_as_sent(http: httpx2.Client, server_url: str) -> None:
    loose = {**FUNCTION, "name": "loose", "strict": False}
    unsaid = {key: value for key, value in FUNCTION.items() if key != "strict"}
    request = body("Hello!", tools=[loose, unsaid], tool_choice="none")
    echoed = post(http, server_url, request).json()["tools"]
    assert [tool["strict"] for tool in echoed] == [False, True]  # the API's default: true


def test_a_response_not_stored_cannot_be_found_again(http: httpx2.Client, server_url: str) -> None:
    unstored = post(http, server_url, body("Hello!", store=False)).json()
    assert unstored["store"] is False
    assert http.get(f"{server_url}/responses/{unstored['id']}").status_code == 404
    after = http.post(
        f"{server_url}/responses", json=body("Count to 3", previous_response_id=unstored["id"])
    )
    assert after.status_code == 400
    assert after.json()["error"]["code"] == "previous_response_not_found"
    stored = post(http, server_url, body("Hello!")).json()
    assert http.get(f"{server_url}/responses/{stored['id']}").status_code == 200


def test_a_function_result_continues_the_conversation(http: httpx2.Client, server_url: str) -> None:
    first = post(http, server_url, body("What's the weather in Tokyo?", tools=[FUNCTION])).json()
    calls = [item for item in first["output"] if item["type"] == "function_call"]
    call_id = calls[0]["call_id"] if calls else "call_1"
    output = {"type": "function_call_output", "call_id": call_id, "output": "22 C, sunny"}
    second = post(
        http, server_url, body(input=[output], previous_response_id=first["id"], tools=[FUNCTION])
    ).json()
    assert second["previous_response_id"] == first["id"]
    assert second["output"][0]["type"] == "message"
    assert second["output"][0]["content"][0]["text"]
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"]


def test_previous_response_id_carries_the_conversation(
    http: httpx2.Client, server_url: str
) -> None:
    first = post(http, server_url, body("Hello!")).json()
    alone = post(http, server_url, body("Count to 3")).json()
    after = post(http, server_url, body("Count to 3", previous_response_id=first["id"])).json()
    assert after["usage"]["input_tokens"] > alone["usage"]["input_tokens"]
    response = http.post(f"{server_url}/responses", json=body(previous_response_id="resp_nope"))
    assert response.status_code == 400  # as OpenAI answers (openai's BadRequestError)
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (
        "previous_response_id",
        "previous_response_not_found",
    )


def test_logprobs_and_json_schema(http: httpx2.Client, server_url: str) -> None:
    request = body("Hello!", include=["message.output_text.logprobs"], top_logprobs=2)
    events = events_of(post(http, server_url, {**request, "stream": True}))
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert all(len(e["logprobs"][0]["top_logprobs"]) == 2 for e in deltas)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}},
        "required": ["city"],
        "additionalProperties": False,
    }
    form = {"type": "json_schema", "name": "place", "schema": schema}
    request = body("Name a city.", text={"format": form}, max_output_tokens=30)
    result = post(http, server_url, request).json()
    assert validate(json.loads(result["output"][0]["content"][0]["text"]), schema) == []


def test_background_response_is_kept_retrieved_and_resumed(http: httpx2.Client, url: str) -> None:
    created = post(http, url, body(background=True)).json()
    assert created["status"] == "queued"
    assert created["background"] is True
    deadline = time.monotonic() + 30
    while (current := http.get(f"{url}/responses/{created['id']}").json())["status"] in (
        "queued",
        "in_progress",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert current["status"] in ("completed", "incomplete")
    replayed = events_of(http.get(f"{url}/responses/{created['id']}", params={"stream": "true"}))
    assert [e["type"] for e in replayed[:3]] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    assert replayed[0]["response"]["status"] == "queued"
    after = http.get(
        f"{url}/responses/{created['id']}", params={"stream": "true", "starting_after": "4"}
    )
    assert events_of(after) == replayed[5:]
    assert replayed[-1]["response"]["output"] == current["output"]


@pytest.mark.parametrize("client_class", [deltastream.OpenAI, openai.OpenAI])
def test_a_dropped_background_stream_resumes(url: str, client_class: Any) -> None:
    """The deltastream client resumes by itself; with the official one the user does it,
    with retrieve(stream=True, starting_after=N). 25 events, cut after 14."""
    fault = {"X-Deltastream-Fault": "drop-after=14"}
    with client_class(base_url=url, api_key="x", max_retries=2) as client:
        stream = client.responses.create(
            model="gpt-4o",
            input="Write a story about a robot.",
            max_output_tokens=16,
            temperature=0,
            background=True,
            stream=True,
            extra_headers=fault,
        )
        events: list[Any] = []
        try:
            for event in stream:
                events.append(event)
        except (openai.APIConnectionError, deltastream.APIConnectionError):
            assert client_class is openai.OpenAI
        if client_class is openai.OpenAI:
            assert len(events) == 14
            rest = client.responses.retrieve(
                events[0].response.id, stream=True, starting_after=events[-1].sequence_number
            )
            events += list(rest)
        else:
            assert stream.metrics.resumes == 1
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(numbers)))  # every event once, in order
    assert len(numbers) == 25
    assert events[-1].type == "response.incomplete"


def test_cancel(http: httpx2.Client, slow_url: str) -> None:
    request = body("Write a story about a robot.", max_output_tokens=None, background=True)
    created = post(http, slow_url, request).json()
    with http.stream(
        "GET", f"{slow_url}/responses/{created['id']}", params={"stream": "true"}
    ) as live:
        cancelled = http.post(f"{slow_url}/responses/{created['id']}/cancel")
        body_bytes = live.read()
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    last = parse_sse(body_bytes)[-1].json()
    assert last["type"] == "error"
    assert last["code"] == "response_cancelled"
    again = http.post(f"{slow_url}/responses/{created['id']}/cancel")
    assert again.json()["status"] == "cancelled"
    assert http.get(f"{slow_url}/responses/{created['id']}").json()["status"] == "cancelled"
    foreground = post(http, slow_url, body("Hello!")).json()
    refused = http.post(f"{slow_url}/responses/{foreground['id']}/cancel")
    assert refused.status_code == 400


STORY = "Write a story about a robot."
CANCEL_MESSAGE = "The response was cancelled by a request to its cancel endpoint."
#: What each face does once it has handed over the cancel's error event: openai's
#: stream ends, and so does the drop-in's (the flat error event is an event there);
#: the native client's raises (README: "raises after it is handed over").
ENDINGS: dict[Any, type[Exception] | None] = {
    openai.OpenAI: None,
    deltastream.OpenAI: None,
    deltastream.Client: deltastream.native.APIStreamError,
}
ENDINGS_ASYNC: dict[Any, type[Exception] | None] = {
    deltastream.AsyncOpenAI: None,
    deltastream.AsyncClient: deltastream.native.APIStreamError,
}


def read_events(chunks: Iterator[bytes], count: int) -> bytes:
    """A body's bytes up to at least its first ``count`` events."""
    wire = b""
    while wire.count(b"\n\n") < count:
        wire += next(chunks)
    return wire


def test_a_cancelled_stream_is_numbered_without_gaps(http: httpx2.Client, slow_url: str) -> None:
    """The cancel's error event takes the next sequence_number, live and on every
    retrieve (the message it cut short sends no .done events), and the stored response
    keeps that message, incomplete."""
    request = body(STORY, max_output_tokens=None, background=True, stream=True)
    with http.stream("POST", f"{slow_url}/responses", json=request) as live:
        chunks = live.iter_bytes()
        wire = read_events(chunks, 6)  # into the text deltas: a message is open
        url = f"{slow_url}/responses/{parse_sse(wire)[0].json()['response']['id']}"
        cancelled = http.post(f"{url}/cancel")
        wire += b"".join(chunks)
    assert cancelled.status_code == 200, cancelled.text
    events = [event.json() for event in parse_sse(wire)]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1] == {
        "type": "error",
        "sequence_number": len(events) - 1,
        "code": "response_cancelled",
        "message": CANCEL_MESSAGE,
        "param": None,
    }
    assert events[-2]["type"] == "response.output_text.delta"
    assert http.get(url, params={"stream": "true"}).content == wire
    for after in range(len(events) - 1):
        again = http.get(url, params={"stream": "true", "starting_after": str(after)})
        assert events_of(again) == events[after + 1 :], after
    last = str(len(events) - 1)
    assert http.get(url, params={"stream": "true", "starting_after": last}).content == b""
    stored = http.get(url).json()
    assert stored == cancelled.json()
    assert stored["status"] == "cancelled"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert stored["output"][0]["status"] == "incomplete"
    assert stored["output"][0]["content"][0]["text"] == text


@pytest.mark.parametrize("client_class", list(ENDINGS), ids=["openai", "drop-in", "native"])
def test_each_client_reads_a_cancelled_stream_as_openai_does(
    http: httpx2.Client, slow_url: str, client_class: Any
) -> None:
    """Four events read, the response cancelled, the stream read on: every event once, in
    order, the last the cancel's error event, handed over by deltastream's faces as by
    openai's; the same live and retrieved, from the start or after an event."""
    ending = ENDINGS[client_class]
    with client_class(base_url=slow_url, api_key="x", max_retries=0) as client:
        stream = client.responses.create(model="gpt-4o", input=STORY, background=True, stream=True)
        iterator = iter(stream)
        events = list(islice(iterator, 4))
        response_id = events[0].response.id
        assert client.responses.cancel(response_id).status == "cancelled"
        events += read_to_the_end(iterator, ending)
        wire = events_of(http.get(f"{slow_url}/responses/{response_id}", params={"stream": "true"}))
        assert [event.to_dict() for event in events] == wire
        assert [e["sequence_number"] for e in wire] == list(range(len(wire)))
        assert wire[-1]["type"] == "error"
        assert wire[-1]["code"] == "response_cancelled"
        for after in (None, 2, len(wire) - 2):
            cursor = {} if after is None else {"starting_after": after}
            again = client.responses.retrieve(response_id, stream=True, **cursor)
            start = 0 if after is None else after + 1
            assert [e.to_dict() for e in read_to_the_end(again, ending)] == wire[start:]


def read_to_the_end(events: Iterable[Any], ending: type[Exception] | None) -> list[Any]:
    """What ``events`` hands over, checking that it ends as ``ending`` says."""
    read: list[Any] = []
    if ending is None:
        collect(events, read)
        return read
    with pytest.raises(ending) as caught:
        collect(events, read)
    assert getattr(caught.value, "code", None) == "response_cancelled"
    return read


def collect(events: Iterable[Any], into: list[Any]) -> None:
    for event in events:
        into.append(event)


async def acollect(events: AsyncIterable[Any], into: list[Any], count: int | None = None) -> None:
    """``events`` into ``into``: ``count`` of them, or to the end."""
    async for event in events:
        into.append(event)
        if len(into) == count:
            return


@pytest.mark.parametrize(
    "client_class", [openai.AsyncOpenAI, *ENDINGS_ASYNC], ids=["openai", "drop-in", "native"]
)
async def test_each_async_client_reads_a_cancelled_stream_as_openai_does(
    slow_url: str, client_class: Any
) -> None:
    async with client_class(base_url=slow_url, api_key="x", max_retries=0) as client:
        stream = await client.responses.create(
            model="gpt-4o", input=STORY, background=True, stream=True
        )
        iterator = aiter(stream)
        events: list[Any] = []
        await acollect(iterator, events, 4)
        await client.responses.cancel(events[0].response.id)
        ending = ENDINGS_ASYNC.get(client_class)
        if ending is None:
            await acollect(iterator, events)
        else:
            with pytest.raises(ending):
                await acollect(iterator, events)
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(numbers)))
    assert events[-1].type == "error"
    assert events[-1].code == "response_cancelled"


def test_the_official_client_reads_the_stream_and_its_helpers(url: str) -> None:
    with openai.OpenAI(base_url=url, api_key="x", max_retries=0) as client:
        with client.responses.stream(
            model="gpt-4o", input="Hello!", max_output_tokens=48, temperature=0
        ) as stream:
            types = [event.type for event in stream]
            final = stream.get_final_response()
        assert types[0] == "response.created"
        assert final.output_text
        whole = client.responses.create(
            model="gpt-4o", input="Count to 3", background=True, max_output_tokens=16
        )
        assert whole.status == "queued"
        events = list(client.responses.retrieve(whole.id, stream=True, starting_after=1))
        assert events[0].sequence_number == 2
        assert events[-1].type in ("response.completed", "response.incomplete")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"max_output_tokens": 8}, "max_output_tokens"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"role": "user", "content": [IMAGE]}]}, "input[0].content[0]"),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
        ({"temperature": 9}, "temperature"),
        ({"text": {"format": {"type": "json_object"}}}, "input"),
        ({"input": None}, "input"),
    ],
)
def test_bad_requests_are_400(
    http: httpx2.Client, server_url: str, extra: dict[str, Any], param: str
) -> None:
    response = http.post(f"{server_url}/responses", json={**body(), **extra})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_unknown_ids_and_cursors(http: httpx2.Client, server_url: str) -> None:
    assert http.get(f"{server_url}/responses/resp_nope").status_code == 404
    assert http.post(f"{server_url}/responses/resp_nope/cancel").status_code == 404
    done = post(http, server_url, body()).json()
    plain = http.get(f"{server_url}/responses/{done['id']}", params={"stream": "true"})
    assert plain.status_code == 400  # not a background response
    kept = post(http, server_url, body(background=True)).json()
    bad = http.get(
        f"{server_url}/responses/{kept['id']}", params={"stream": "true", "starting_after": "x"}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "starting_after"


def test_status_faults_apply(http: httpx2.Client, server_url: str) -> None:
    headers = {"X-Deltastream-Fault": "status=429; key=responses-429"}
    response = http.post(f"{server_url}/responses", json=body(), headers=headers)
    assert response.status_code == 429
    assert post(http, server_url, body("Hello!"), **headers).json()["status"] == "completed"


async def test_the_store_is_bounded_in_count_bytes_age_and_running() -> None:
    request = validate_responses_request({"model": "m", "input": "hi"})

    def finished(store: ResponseStore) -> StoredResponse:
        store.admit()
        stored = StoredResponse(ResponseBuilder(request), (), request.input)
        store.add(stored)
        stored.cancel("done")
        return stored

    store = ResponseStore(max_responses=3, max_running=2)
    running = [StoredResponse(ResponseBuilder(request), (), request.input) for _ in range(2)]
    for stored in running:
        store.admit()
        store.add(stored)
    with pytest.raises(APIError) as caught:
        store.admit()
    assert caught.value.status == 429
    for stored in running:
        stored.cancel("done")
    kept = [finished(store) for _ in range(5)]
    assert len(store) == 3
    assert store.get(kept[-1].id) is kept[-1]
    with pytest.raises(APIError):
        store.get(kept[0].id)  # the oldest went first

    small = ResponseStore(max_bytes=kept[0].size * 2)
    for _ in range(4):
        finished(small)
    assert small.size <= kept[0].size * 2

    young = ResponseStore(max_age=0.0)
    gone = finished(young)
    await asyncio.sleep(0.01)
    with pytest.raises(APIError):
        young.get(gone.id)


def test_a_streamed_response_can_be_continued_at_once(http: httpx2.Client, server_url: str) -> None:
    for _ in range(3):
        events = events_of(post(http, server_url, body("Hello!", stream=True)))
        first_id = events[-1]["response"]["id"]
        after = post(http, server_url, body("Count to 3", previous_response_id=first_id))
        assert after.json()["status"] == "completed"
        assert http.get(f"{server_url}/responses/{first_id}").json()["status"] == "completed"
