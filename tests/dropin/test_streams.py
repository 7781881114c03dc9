"""The drop-in's streams keep every extra of the engine's: text_deltas, snapshots,
metrics, tee, cancel, sse_events, the deadlines, errors with openai's classes and an
openai-typed .partial, and the automatic resume of background Responses streams; the
.stream() helpers too. Over real sockets to the local server."""

from __future__ import annotations

import threading
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

import deltastream
from deltastream.server import create_app, run_in_thread

STORY: Any = [{"role": "user", "content": "Write a story about a robot."}]
FAULT = "X-Deltastream-Fault"
RESUME_FILE = "openai/responses-background-resume.sse"


def chat(client: deltastream.OpenAI, **options: Any) -> Any:
    return client.chat.completions.create(model="m", messages=STORY, stream=True, **options)


def test_a_chat_stream_is_openais_with_the_extras(server_url: str) -> None:
    with deltastream.OpenAI(base_url=server_url) as client:
        stream = chat(client, stream_options={"include_usage": True})
        assert isinstance(stream, openai.Stream)
        assert isinstance(stream, deltastream.Stream)
        text = "".join(stream.text_deltas())
        final = stream.current_snapshot
        assert isinstance(final, ChatCompletion)
        assert final.choices[0].message.content == text
        assert final.usage is not None
        assert final.usage.completion_tokens > 0
        assert stream.metrics.chunks == stream.events_received > 10
        assert stream.metrics.time_to_first_token is not None


@pytest.mark.parametrize("make", [openai.OpenAI, deltastream.OpenAI, deltastream.Client])
def test_a_stream_read_marks_its_response_consumed_as_httpx2_does(
    server_url: str, make: Any
) -> None:
    with make(base_url=server_url, api_key="sk-test") as client:
        stream = chat(client)
        assert not stream.response.is_stream_consumed
        next(iter(stream))
        assert stream.response.is_stream_consumed
        stream.close()
        assert stream.response.is_stream_consumed
        assert stream.response.is_closed


def test_a_streams_response_counts_its_bytes_as_openais_does(server_url: str) -> None:
    counts: dict[Any, int] = {}
    makers: list[Any] = [openai.OpenAI, deltastream.OpenAI, deltastream.Client]
    for make in makers:
        with make(base_url=server_url, api_key="sk-test") as client:
            stream = chat(client)
            text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
            counts[make] = stream.response.num_bytes_downloaded
        assert counts[make] > len(text.encode())  # the text, its chunks and their framing
    # the same answer in events of the same sizes (the scripted server's ids and
    # timestamps are of fixed length)
    assert counts[openai.OpenAI] == counts[deltastream.OpenAI] == counts[deltastream.Client]


async def test_an_async_stream_read_marks_its_response_consumed(server_url: str) -> None:
    async with deltastream.AsyncOpenAI(base_url=server_url) as client:
        stream: Any = await client.chat.completions.create(model="m", messages=STORY, stream=True)
        assert not stream.response.is_stream_consumed
        assert [chunk async for chunk in stream]
        assert stream.response.is_stream_consumed
        assert stream.response.num_bytes_downloaded > 0


def test_tee_and_sse_events(server_url: str) -> None:
    with deltastream.OpenAI(base_url=server_url) as client:
        first, second = chat(client).tee()
        a, b = list(first), list(second)
        assert a == b
        assert all(isinstance(chunk, ChatCompletionChunk) for chunk in a)
        events = list(chat(client).sse_events())
        assert events[-1].data == "[DONE]"
        assert len(events) == len(a) + 1


def test_cancel_from_another_thread_ends_the_loop_quietly(server_url: str) -> None:
    with deltastream.OpenAI(base_url=server_url) as client:
        stream = chat(client, extra_headers={FAULT: "stall-after=3:30"})
        seen = []
        for chunk in stream:
            seen.append(chunk)
            if len(seen) == 3:
                threading.Timer(0.2, stream.cancel).start()
        assert len(seen) == 3
        assert stream.cancelled


@pytest.mark.parametrize(
    "how", ["per call", "with_options", "client"], ids=lambda how: how.replace(" ", "_")
)
def test_the_idle_deadline(server_url: str, how: str) -> None:
    timeout = deltastream.Timeout(idle=0.3)
    client = deltastream.OpenAI(base_url=server_url, max_retries=0)
    if how == "client":
        client = deltastream.OpenAI(base_url=server_url, max_retries=0, timeout=timeout)
    elif how == "with_options":
        client = client.with_options(timeout=timeout)
    options: dict[str, Any] = {"extra_headers": {FAULT: "stall-after=3:30"}}
    if how == "per call":
        options["timeout"] = timeout
    with client, pytest.raises(openai.APITimeoutError) as caught:
        for _ in chat(client, **options):
            pass
    error = caught.value
    assert isinstance(error, deltastream.DeadlineError)
    assert (error.deadline, error.seconds) == ("idle", 0.3)
    assert isinstance(error.partial, ChatCompletion)
    assert error.partial.choices[0].message.content
    assert error.events_received == 3
    # raised from a read timeout, as openai's is, not from the socket the watchdog shut
    assert isinstance(error.__cause__, httpx2.ReadTimeout)


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        ("drop-after=5", deltastream.StreamConnectionError),
        ("no-done", deltastream.StreamTruncatedError),
        ("garbage-after=4", deltastream.StreamDecodeError),
    ],
)
def test_mid_stream_failures_are_openais_with_the_partial(
    server_url: str, fault: str, error_type: type[Exception]
) -> None:
    received: list[Any] = []
    client = deltastream.OpenAI(base_url=server_url, max_retries=0)
    with client, pytest.raises(openai.APIError) as caught:
        received.extend(chat(client, extra_headers={FAULT: fault}))
    error: Any = caught.value
    assert isinstance(error, error_type)
    assert isinstance(error, deltastream.StreamError)
    assert isinstance(error.partial, ChatCompletion)
    assert error.partial.choices[0].message.content
    assert error.events_received > 0
    if error_type is deltastream.StreamConnectionError:
        assert str(error) == "Connection error."  # openai's words; the cause says what broke
        assert isinstance(error.__cause__, httpx2.TransportError)


def test_an_error_in_the_stream_has_openais_body(server_url: str) -> None:
    client = deltastream.OpenAI(base_url=server_url)
    with client, pytest.raises(openai.APIError) as caught:
        for _ in chat(client, extra_headers={FAULT: "error-after=2"}):
            pass
    error = caught.value
    assert isinstance(error, deltastream.APIStreamError)
    assert isinstance(error.body, dict)
    assert error.body["code"] == "injected"  # the error object itself, as openai gives it
    assert error.message == error.body["message"]
    assert error.partial.choices[0].message.content


def test_a_non_event_stream_answer_is_openais_validation_error(server_url: str) -> None:
    client = deltastream.OpenAI(base_url=server_url)
    with client, pytest.raises(openai.APIResponseValidationError, match="text/event-stream"):
        chat(client, extra_headers={FAULT: "content-type=text/plain"})


def test_a_background_responses_stream_resumes(replay_url: str) -> None:
    with deltastream.OpenAI(base_url=replay_url, max_retries=5) as client:
        stream: Any = client.responses.create(
            model=RESUME_FILE,
            input="hi",
            stream=True,
            background=True,
            extra_headers={FAULT: "drop-after=4"},
        )
        numbers = [event.sequence_number for event in stream]
        final = stream.get_final_response()
    assert numbers == list(range(1, 17))  # every event once, in order
    assert isinstance(final, Response)
    assert final.output_text == "2 + 2 equals 4."
    assert stream.metrics.resumes == 3
    assert stream.events_received == 16


async def test_a_background_responses_stream_resumes_async(replay_url: str) -> None:
    async with deltastream.AsyncOpenAI(base_url=replay_url, max_retries=5) as client:
        stream: Any = await client.responses.create(
            model=RESUME_FILE,
            input="hi",
            stream=True,
            background=True,
            extra_headers={FAULT: "drop-after=4"},
        )
        numbers = [event.sequence_number async for event in stream]
        final = await stream.get_final_response()
    assert numbers == list(range(1, 17))
    assert final.output_text == "2 + 2 equals 4."


def test_the_stream_helpers_have_the_extras(server_url: str, replay_url: str) -> None:
    with deltastream.OpenAI(base_url=server_url) as client:
        with client.chat.completions.stream(model="m", messages=STORY) as stream:
            text = "".join(stream.text_deltas())  # type: ignore[attr-defined]
            metrics = stream.metrics  # type: ignore[attr-defined]
            final = stream.get_final_completion()
        assert isinstance(stream, openai.lib.streaming.chat.ChatCompletionStream)
        assert text == final.choices[0].message.content
        assert metrics.chunks > 10
    replay = deltastream.OpenAI(base_url=replay_url)
    with replay, replay.responses.stream(model="openai/responses-text.sse", input="hi") as events:
        text = "".join(events.text_deltas())  # type: ignore[attr-defined]
        assert events.get_final_response().output_text == text


async def test_the_async_stream_helper_has_the_extras(server_url: str) -> None:
    client = deltastream.AsyncOpenAI(base_url=server_url)
    async with (
        client,
        client.chat.completions.stream(
            model="m", messages=STORY, extra_headers={FAULT: "stall-after=3:30"}
        ) as stream,
    ):
        count = 0
        async for event in stream:
            count += event.type == "chunk"
            if count == 3:
                stream.cancel()  # type: ignore[attr-defined]
        assert stream.cancelled  # type: ignore[attr-defined]
        assert stream.events_received == 3  # type: ignore[attr-defined]


# openai wraps a read's error mid-stream since its request_exceptions() (the oldest
# openai the drop-in supports lets it through: then this is the drop-in's rule alone).
_WRAPS = hasattr(openai._httpx2, "request_exceptions")


@pytest.mark.parametrize(
    "cls",
    [
        pytest.param(openai.OpenAI, marks=pytest.mark.skipif(not _WRAPS, reason="lets it through")),
        deltastream.OpenAI,
    ],
)
def test_a_helper_read_after_its_close_fails_as_openais_does(cls: Any) -> None:
    """openai's helper closes its HTTP response; what reads on gets a connection error
    from the read (not the engine's "ended without [DONE]", which blames the server)."""
    with (
        run_in_thread(create_app(tokens_per_second=50)) as base,
        cls(base_url=base, api_key="x") as client,
        client.chat.completions.stream(model="m", messages=STORY) as helper,
    ):
        for _, _event in zip(range(3), helper, strict=False):
            pass
        helper.close()
        with pytest.raises(openai.APIConnectionError) as caught:
            list(helper)
    assert str(caught.value) == "Connection error."
    assert isinstance(caught.value.__cause__, httpx2.ReadError)
