"""Bad requests get OpenAI-shaped errors: 400 validation, 401 api key, 404 unknown URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from deltastream.server import create_app, run_in_thread

from ._sse import chat_body


def _error(response: httpx2.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["message", "type", "param", "code"]
    error: dict[str, Any] = body["error"]
    return error


def _post(http: httpx2.Client, server_url: str, content: bytes) -> httpx2.Response:
    headers = {"content-type": "application/json"}
    return http.post(f"{server_url}/chat/completions", content=content, headers=headers)


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        (b"{not json", "could not parse the JSON body", None, None),
        (b"[1, 2]", "must be a JSON object", None, None),
        (b'{"messages": []}', "you must provide a model parameter", None, None),
        (
            b'{"model": "m"}',
            "Missing required parameter: 'messages'",
            "messages",
            "missing_required_parameter",
        ),
        (
            b'{"model": "m", "messages": "hi"}',
            "expected an array of objects",
            "messages",
            "invalid_type",
        ),
        (b'{"model": "m", "messages": []}', "empty array", "messages", "empty_array"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            "read text only",
            "messages[0].content[0]",
            "unsupported_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": [1]}',
            "expected a string or an array of strings",
            "stop",
            "invalid_type",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 1, '
            b'"tools": [{"type": "function", "function": {"name": "a b"}}]}',
            "does not match pattern",
            "tools[0].function.name",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "audio": {}}',
            "Unsupported parameter: 'audio'",
            "audio",
            "unsupported_parameter",
        ),
        (
            b'{"model": "m", "messages": ["hi"]}',
            "expected an object",
            "messages[0]",
            "invalid_type",
        ),
        (
            b'{"model": "m", "messages": [{"content": "hi"}]}',
            "Missing required parameter: 'messages[0].role'",
            "messages[0].role",
            "missing_required_parameter",
        ),
        (
            b'{"model": "m", "messages": [{"role": "robot", "content": "hi"}]}',
            "Invalid value: 'robot'",
            "messages[0].role",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "n": 0}',
            "integer below minimum value. Expected a value >= 1, but got 0",
            "n",
            "integer_below_min_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "n": 129}',
            "integer above maximum value. Expected a value <= 128, but got 129",
            "n",
            "integer_above_max_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "tool_choice": "auto"}',
            "'tool_choice' is only allowed when 'tools' are specified",
            "tool_choice",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "parallel_tool_calls": true}',
            "'parallel_tool_calls' is only allowed when 'tools' are specified",
            "parallel_tool_calls",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": 0}',
            "integer below minimum value",
            "max_tokens",
            "integer_below_min_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "stream_options": {}}',
            "only allowed when 'stream' is enabled",
            "stream_options",
            "invalid_value",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": "3"}',
            "expected an integer",
            "max_tokens",
            "invalid_type",
        ),
    ],
)
def test_validation_errors(
    http: httpx2.Client,
    server_url: str,
    body: bytes,
    message: str,
    param: str | None,
    code: str | None,
) -> None:
    error = _error(_post(http, server_url, body), 400)
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)


_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
_SECOND = {**_CALL, "id": "call_2"}
_USER = {"role": "user", "content": "hi"}


def _asked(calls: object) -> dict[str, Any]:
    """An assistant message with ``calls`` as its ``tool_calls``, whatever they are."""
    return {"role": "assistant", "content": None, "tool_calls": calls}


def _asks(*calls: dict[str, Any]) -> dict[str, Any]:
    return _asked(list(calls))


def _answer(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "done"}


def _refused(http: httpx2.Client, server_url: str, messages: list[dict[str, Any]]) -> Any:
    """The 400 error a chat request with these messages gets (an invalid request)."""
    body = {"model": "m", "messages": messages}
    error = _error(http.post(f"{server_url}/chat/completions", json=body), 400)
    assert error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize(
    ("messages", "words", "param"),
    [
        ([_USER, _answer("call_1")], "must be a response to a preceding", "messages.[1].role"),
        (
            [_USER, _asks(_CALL), _answer("call_9")],
            "must be a response to a preceding",
            "messages.[2].role",
        ),
        (
            [_USER, _asks(_CALL), _answer("call_1"), _answer("call_1")],
            "must be a response to a preceding",
            "messages.[3].role",
        ),
        (
            [_USER, _asks(_CALL, _SECOND), _answer("call_2"), _USER],
            "did not have response messages: call_1",
            "messages.[1].role",
        ),
        (
            [_USER, _asks(_CALL, _SECOND)],
            "did not have response messages: call_1, call_2",
            "messages.[1].role",
        ),
        (
            [_USER, _asks(_CALL), _USER, _answer("call_1")],
            "did not have response messages: call_1",
            "messages.[1].role",
        ),
    ],
)
def test_tool_messages_must_answer_the_calls_before_them(
    http: httpx2.Client,
    server_url: str,
    messages: list[dict[str, Any]],
    words: str,
    param: str,
) -> None:
    error = _refused(http, server_url, messages)
    assert words in error["message"]
    assert (error["param"], error["code"]) == (param, None)


@pytest.mark.parametrize(
    ("messages", "param", "code"),
    [
        ([_USER, _asked([]), _USER], "messages[1].tool_calls", "empty_array"),
        ([_USER, _asked("call_1"), _USER], "messages[1].tool_calls", "invalid_type"),
        ([_USER, _asked(["call_1"]), _USER], "messages[1].tool_calls[0]", "invalid_type"),
        (
            [_USER, _asked([{**_CALL, "id": None}]), _answer("None")],
            "messages[1].tool_calls[0].id",
            "missing_required_parameter",
        ),
        (
            [_USER, _asked([{**_CALL, "id": 1}]), _answer("1")],
            "messages[1].tool_calls[0].id",
            "invalid_type",
        ),
        (
            [_USER, _asked([{"id": "call_1", "type": "function"}]), _answer("call_1")],
            "messages[1].tool_calls[0].function",
            "missing_required_parameter",
        ),
        (
            [_USER, _asked([{**_CALL, "function": {"arguments": "{}"}}]), _answer("call_1")],
            "messages[1].tool_calls[0].function.name",
            "missing_required_parameter",
        ),
        (
            [_USER, _asked([{**_CALL, "function": {"name": "f", "arguments": {}}}])],
            "messages[1].tool_calls[0].function.arguments",
            "invalid_type",
        ),
        (
            [_USER, _asks(_CALL), {"role": "tool", "content": "done"}],
            "messages[2].tool_call_id",
            "missing_required_parameter",
        ),
        (
            [_USER, _asks(_CALL), {"role": "tool", "tool_call_id": 1, "content": "done"}],
            "messages[2].tool_call_id",
            "invalid_type",
        ),
    ],
)
def test_malformed_tool_calls_and_answers(
    http: httpx2.Client,
    server_url: str,
    messages: list[dict[str, Any]],
    param: str,
    code: str,
) -> None:
    error = _refused(http, server_url, messages)
    assert (error["param"], error["code"]) == (param, code)


def test_answered_tool_calls_are_accepted(http: httpx2.Client, server_url: str) -> None:
    messages = [
        _USER,
        _asks(_CALL, _SECOND),
        _answer("call_2"),
        _answer("call_1"),
        {"role": "assistant", "content": "both done"},
        _USER,
        _asks(_CALL),
        _answer("call_1"),
    ]
    body = {"model": "m", "messages": messages}
    response = http.post(f"{server_url}/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"


def test_bad_fault_header_is_a_400(http: httpx2.Client, server_url: str) -> None:
    response = http.post(
        f"{server_url}/chat/completions",
        json=chat_body(stream=True),
        headers={"X-Deltastream-Fault": "drop-after=soon"},
    )
    error = _error(response, 400)
    assert "bad value 'soon' for 'drop-after'" in error["message"]
    assert (error["param"], error["code"]) == ("X-Deltastream-Fault", "invalid_fault")


def test_unknown_url_and_method(http: httpx2.Client, server_url: str) -> None:
    error = _error(http.post(f"{server_url}/nothing/here", json={}), 404)
    assert error["message"] == "Invalid URL (POST /v1/nothing/here)"
    _error(http.get(f"{server_url}/chat/completions"), 405)


@pytest.fixture(scope="module")
def keyed_url() -> Iterator[str]:
    with run_in_thread(create_app(api_key="sk-test-123456")) as url:
        yield url


@pytest.mark.parametrize(
    ("headers", "message", "code"),
    [
        ({}, "You didn't provide an API key", None),
        ({"Authorization": "Basic abc"}, "You didn't provide an API key", None),
        (
            {"Authorization": "Bearer sk-wrong-000000"},
            "Incorrect API key provided: sk-******0000",
            "invalid_api_key",
        ),
    ],
)
def test_api_key_required(
    http: httpx2.Client, keyed_url: str, headers: dict[str, str], message: str, code: str | None
) -> None:
    for response in (
        http.post(f"{keyed_url}/chat/completions", json=chat_body(), headers=headers),
        http.get(f"{keyed_url}/models", headers=headers),
    ):
        error = _error(response, 401)
        assert message in error["message"]
        assert error["code"] == code


def test_api_key_accepted(http: httpx2.Client, keyed_url: str) -> None:
    headers = {"Authorization": "Bearer sk-test-123456"}
    response = http.post(f"{keyed_url}/chat/completions", json=chat_body(), headers=headers)
    assert response.status_code == 200
    assert http.get(keyed_url.removesuffix("/v1") + "/health").status_code == 200


def _oversized() -> Iterator[bytes]:
    """A body sent in pieces, with no Content-Length, past the 16 MiB limit."""
    yield b'{"model": "m", "messages": [{"role": "user", "content": "'
    for _ in range(17):
        yield b"x" * (1024 * 1024)
    yield b'"}]}'


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
def test_a_body_over_the_limit_is_refused_as_openai_refuses_one(
    http: httpx2.Client, server_url: str, declared: bool
) -> None:
    content: bytes | Iterator[bytes] = b"".join(_oversized()) if declared else _oversized()
    response = http.post(
        f"{server_url}/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "larger than the limit" in response.json()["error"]["message"]
    assert response.headers["x-request-id"].startswith("req_")
