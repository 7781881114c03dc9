"""Client behaviour that needs no network: requests, errors, stream rules (MockTransport)."""

from __future__ import annotations

import json

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream import Timeout
from deltastream.engine.types import ChatCompletion

from ._helpers import (
    MODES,
    async_client,
    chunk_json,
    event_stream,
    sse_body,
    stream_chunks,
    sync_client,
)

HELLO = sse_body(chunk_json("Hel"), chunk_json("lo"), chunk_json(finish="stop"))


@pytest.mark.parametrize("mode", MODES)
async def test_streaming_request_is_what_the_api_expects(mode: str) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return event_stream(HELLO)

    chunks = await stream_chunks(
        mode, handler, temperature=0.5, extra_body={"top_k": 3}, extra_headers={"X-A": "b"}
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://testserver/v1/chat/completions"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-a"] == "b"
    body = json.loads(request.content)
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "temperature": 0.5,
        "top_k": 3,
    }


@pytest.mark.parametrize("piece", [1, 2, 7, 64])
@pytest.mark.parametrize("mode", MODES)
async def test_any_chunking_of_the_body_gives_the_same_chunks(mode: str, piece: int) -> None:
    body = sse_body(chunk_json("日本"), chunk_json("語 ✓ 🤖"), chunk_json(finish="stop"))
    chunks = await stream_chunks(mode, lambda _: event_stream(body, piece=piece))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "日本語 ✓ 🤖"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_environment_configures_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://elsewhere:9/v1/")
    client = deltastream.Client()
    assert client.api_key == "sk-env"
    assert client.base_url == "http://elsewhere:9/v1"
    assert "sk-env" not in repr(client)
    client.close()


def test_the_official_endpoint_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(deltastream.native.OpenAIError, match="api_key"):
        deltastream.Client()


def test_a_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return event_stream(HELLO)

    client = sync_client(handler, api_key=None)
    list(client.chat.completions.create(model="m", messages=[], stream=True))
    assert "authorization" not in seen[0].headers


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, deltastream.native.BadRequestError),
        (401, deltastream.native.AuthenticationError),
        (403, deltastream.native.PermissionDeniedError),
        (404, deltastream.native.NotFoundError),
        (409, deltastream.native.ConflictError),
        (422, deltastream.native.UnprocessableEntityError),
        (429, deltastream.native.RateLimitError),
        (500, deltastream.native.InternalServerError),
        (503, deltastream.native.InternalServerError),
        (418, deltastream.native.APIStatusError),
    ],
)
@pytest.mark.parametrize("mode", MODES)
async def test_status_errors_map_to_the_official_classes(
    mode: str, status: int, error: type[deltastream.native.APIStatusError]
) -> None:
    body = {
        "error": {"message": "nope", "type": "invalid_request_error", "code": "bad", "param": "x"}
    }

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body, headers={"x-request-id": "req_1"})

    with pytest.raises(error) as caught:
        await stream_chunks(mode, handler, max_retries=0)
    exc = caught.value
    assert type(exc) is error
    assert exc.status_code == status
    assert exc.message == f"Error code: {status} - nope"
    assert exc.body == body
    assert exc.request_id == "req_1"
    assert (exc.code, exc.type, exc.param) == ("bad", "invalid_request_error", "x")
    assert exc.response.status_code == status


@pytest.mark.parametrize("mode", MODES)
async def test_retryable_statuses_are_retried_until_success(mode: str) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        if len(calls) < 3:
            return httpx2.Response(
                503, json={"error": {"message": "busy"}}, headers={"retry-after-ms": "5"}
            )
        return event_stream(HELLO)

    chunks = await stream_chunks(mode, handler)
    assert len(calls) == 3
    assert len(chunks) == 3


@pytest.mark.parametrize("mode", MODES)
async def test_retries_stop_at_max_retries(mode: str) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(
            429, json={"error": {"message": "slow down"}}, headers={"retry-after-ms": "1"}
        )

    with pytest.raises(deltastream.native.RateLimitError):
        await stream_chunks(mode, handler, max_retries=1)
    assert len(calls) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_client_errors_are_not_retried(mode: str) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(400, json={"error": {"message": "bad"}})

    with pytest.raises(deltastream.native.BadRequestError):
        await stream_chunks(mode, handler)
    assert len(calls) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_connection_errors_are_translated_and_chained(mode: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(deltastream.native.APIConnectionError, match="refused") as caught:
        await stream_chunks(mode, handler, max_retries=0)
    assert isinstance(caught.value.__cause__, httpx2.ConnectError)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("exc", "deadlines", "deadline", "seconds"),
    [
        # waiting for the response head is the first token's wait
        (httpx2.ReadTimeout, 2.5, "first_token", 2.5),
        (httpx2.ConnectTimeout, 2.5, "connect", 2.5),
        (httpx2.PoolTimeout, 2.5, "pool", 2.5),
        # total is nearer than the phase's own deadline: it is the one that passed
        (httpx2.ReadTimeout, Timeout(first_token=60, total=2), "total", 2),
        (httpx2.ConnectTimeout, Timeout(connect=60, total=2), "total", 2),
    ],
)
async def test_timeouts_name_the_deadline(
    mode: str,
    exc: type[httpx2.TimeoutException],
    deadlines: float | Timeout,
    deadline: str,
    seconds: float,
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise exc("slow", request=request)

    with pytest.raises(deltastream.native.APITimeoutError, match=f"{deadline} deadline") as caught:
        await stream_chunks(mode, handler, max_retries=0, timeout=deadlines)
    assert caught.value.deadline == deadline
    assert caught.value.seconds == seconds


@pytest.mark.parametrize("mode", MODES)
async def test_a_non_event_stream_answer_is_a_clear_error(mode: str) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"hello": "world"})

    with pytest.raises(
        deltastream.native.APIResponseValidationError, match="text/event-stream"
    ) as caught:
        await stream_chunks(mode, handler)
    assert "hello" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("content_type", ["Text/Event-Stream", "TEXT/EVENT-STREAM; charset=UTF-8"])
async def test_the_event_stream_content_type_is_case_insensitive(
    mode: str, content_type: str
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = sse_body(chunk_json("hel"), chunk_json("lo"))
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)

    chunks = await stream_chunks(mode, handler)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "hello"


@pytest.mark.parametrize("mode", MODES)
async def test_in_band_error_event_raises_with_the_partial_result(mode: str) -> None:
    error = {"error": {"message": "overloaded", "type": "server_error", "code": "busy"}}
    body = sse_body(chunk_json("par"), chunk_json("tial"), done=False)
    body += b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n"
    with pytest.raises(deltastream.native.APIStreamError, match="overloaded") as caught:
        await stream_chunks(mode, lambda _: event_stream(body))
    exc = caught.value
    assert exc.code == "busy"
    assert exc.type == "server_error"
    assert exc.events_received == 2
    assert isinstance(exc.partial, ChatCompletion)
    assert exc.partial.choices[0].message.content == "partial"


@pytest.mark.parametrize("mode", MODES)
async def test_error_object_in_a_data_event_raises(mode: str) -> None:
    body = sse_body(chunk_json("a"), {"error": {"message": "Token limit reached", "code": 400}})
    with pytest.raises(deltastream.native.APIStreamError, match="Token limit reached") as caught:
        await stream_chunks(mode, lambda _: event_stream(body))
    assert caught.value.code == "400"


@pytest.mark.parametrize("mode", MODES)
async def test_the_word_error_in_content_is_not_an_error(mode: str) -> None:
    body = sse_body(chunk_json('"error"'), chunk_json("error"), chunk_json(finish="stop"))
    chunks = await stream_chunks(mode, lambda _: event_stream(body))
    assert [c.choices[0].delta.content for c in chunks[:2]] == ['"error"', "error"]


@pytest.mark.parametrize("mode", MODES)
async def test_malformed_json_raises_a_decode_error_with_the_data(mode: str) -> None:
    body = sse_body(chunk_json("ok"), "{not json")
    with pytest.raises(deltastream.native.StreamDecodeError) as caught:
        await stream_chunks(mode, lambda _: event_stream(body))
    assert caught.value.data == b"{not json"
    assert caught.value.partial.choices[0].message.content == "ok"
    assert caught.value.__cause__ is None or not isinstance(caught.value.__cause__, ValueError)


@pytest.mark.parametrize("mode", MODES)
async def test_a_body_without_done_is_reported_as_truncated(mode: str) -> None:
    body = sse_body(chunk_json("cut"), done=False)
    with pytest.raises(deltastream.native.StreamTruncatedError) as caught:
        await stream_chunks(mode, lambda _: event_stream(body))
    assert isinstance(caught.value, deltastream.native.APIConnectionError)
    assert caught.value.partial.choices[0].message.content == "cut"
    assert caught.value.events_received == 1


@pytest.mark.parametrize("mode", MODES)
async def test_events_after_done_are_ignored(mode: str) -> None:
    body = HELLO + sse_body(chunk_json("late"), done=False)
    chunks = await stream_chunks(mode, lambda _: event_stream(body))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"


@pytest.mark.parametrize("mode", MODES)
async def test_non_streaming_create_returns_a_completion(mode: str) -> None:
    completion = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 5,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        "x_vendor": {"kept": True},
    }
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=completion)

    if mode == "sync":
        result = sync_client(handler).chat.completions.create(model="m", messages=[])
    else:
        result = await async_client(handler).chat.completions.create(model="m", messages=[])
    assert isinstance(result, ChatCompletion)
    assert result.choices[0].message.content == "Hi"
    assert result.usage is not None
    assert result.usage.total_tokens == 2
    assert result.to_dict()["x_vendor"] == {"kept": True}
    assert seen[0].headers["accept"] == "application/json"
    assert "stream" not in json.loads(seen[0].content)


@pytest.mark.parametrize("mode", MODES)
async def test_stream_helpers_accumulate(mode: str) -> None:
    handler = lambda _: event_stream(HELLO)  # noqa: E731
    if mode == "sync":
        client = sync_client(handler)
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        assert list(stream.text_deltas()) == ["Hel", "lo"]
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        final = stream.get_final_completion()
    else:
        aclient = async_client(handler)
        astream = await aclient.chat.completions.create(model="m", messages=[], stream=True)
        assert [t async for t in astream.text_deltas()] == ["Hel", "lo"]
        astream = await aclient.chat.completions.create(model="m", messages=[], stream=True)
        final = await astream.get_final_completion()
    assert final.choices[0].message.content == "Hello"
    assert final.choices[0].finish_reason == "stop"


def test_with_options_changes_settings_and_shares_the_pool() -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        return httpx2.Response(
            503, json={"error": {"message": "busy"}}, headers={"retry-after-ms": "1"}
        )

    client = sync_client(handler, max_retries=3)
    strict = client.with_options(max_retries=0, timeout=9, default_headers={"X-B": "c"})
    assert strict._http is client._http
    assert (strict.max_retries, client.max_retries) == (0, 3)
    assert strict.timeout.first_token == 9
    with pytest.raises(deltastream.native.InternalServerError):
        strict.chat.completions.create(model="m", messages=[], stream=True)
    assert len(calls) == 1
    strict.close()  # does not close the shared pool
    with pytest.raises(deltastream.native.InternalServerError):
        client.chat.completions.create(model="m", messages=[], stream=True)
    assert len(calls) == 5


def test_the_retry_loop_waits_what_the_policy_says_on_virtual_time() -> None:
    from deltastream.engine._deadlines import DEFAULT_TIMEOUT
    from deltastream.engine._http import RequestOptions, send

    replies = iter(
        [
            httpx2.Response(503, headers={"retry-after": "3"}),
            httpx2.Response(429, headers={"retry-after-ms": "250"}),
            httpx2.Response(500),
            httpx2.Response(200, content=b"ok"),
        ]
    )
    slept: list[float] = []
    http = httpx2.Client(transport=httpx2.MockTransport(lambda _: next(replies)))
    options = RequestOptions(
        method="POST", url="http://t/v1/x", headers={}, timeout=DEFAULT_TIMEOUT, max_retries=3
    )
    response = send(http, options, sleep=slept.append)
    assert response.status_code == 200
    assert slept[:2] == [3.0, 0.25]
    assert 1.5 <= slept[2] <= 2.0  # backoff for the third attempt: 2 s less up to 25%


@pytest.mark.parametrize("mode", MODES)
async def test_waiting_for_a_pooled_connection_is_not_retried(mode: str) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(1)
        raise httpx2.PoolTimeout("all connections busy", request=request)

    with pytest.raises(deltastream.native.APITimeoutError) as caught:
        await stream_chunks(mode, handler)
    assert caught.value.deadline == "pool"
    assert len(calls) == 1  # a retry would only join the back of the same queue
