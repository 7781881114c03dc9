"""Each fault directive, over real sockets, as a client would see it."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator

import httpx2
import pytest

from deltastream.server import create_app, run_in_thread

from ._raw import dechunk, raw_post
from ._sse import chat_body, parse_sse

FAULT = "X-Deltastream-Fault"


def _stream(
    http: httpx2.Client, server_url: str, fault: str, prompt: str = "Count to 5"
) -> httpx2.Response:
    return http.post(
        f"{server_url}/chat/completions",
        json=chat_body(prompt, stream=True),
        headers={FAULT: fault},
    )


def _raw_exchange(server_url: str, fault: str) -> tuple[bytes, bytes, OSError | None]:
    return raw_post(
        f"{server_url}/chat/completions", chat_body("Count to 5", stream=True), {FAULT: fault}
    )


@pytest.mark.parametrize("after", [0, 3])
def test_drop_after_breaks_the_chunked_body(server_url: str, after: int) -> None:
    head, body, error = _raw_exchange(server_url, f"drop-after={after}")
    assert error is None  # a FIN, not a reset
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding: chunked" in head.lower()
    chunks, terminated = dechunk(body)
    payload = b"".join(chunks)
    assert not terminated
    assert payload.count(b"data: ") == after
    assert payload == b"" or payload.endswith(b"\n\n")


def test_drop_after_with_httpx_client(http: httpx2.Client, server_url: str) -> None:
    received = bytearray()

    def read_all() -> None:
        with http.stream(
            "POST",
            f"{server_url}/chat/completions",
            json=chat_body("Count to 5", stream=True),
            headers={FAULT: "drop-after=2"},
        ) as response:
            for data in response.iter_raw():
                received.extend(data)

    with pytest.raises(httpx2.RemoteProtocolError, match="incomplete chunked read"):
        read_all()
    assert len(parse_sse(bytes(received))) == 2


def test_reset_after_resets_the_connection(server_url: str) -> None:
    _, body, error = _raw_exchange(server_url, "reset-after=2")
    assert isinstance(error, ConnectionResetError)
    chunks, terminated = dechunk(body)
    assert not terminated
    assert b"".join(chunks).count(b"data: ") == 2


def test_stall_after_pauses(http: httpx2.Client, server_url: str) -> None:
    arrivals = []
    with http.stream(
        "POST",
        f"{server_url}/chat/completions",
        json=chat_body("Count to 5", stream=True),
        headers={FAULT: "stall-after=2:0.3"},
    ) as response:
        buffer = b""
        for data in response.iter_raw():
            buffer += data
            while b"\n\n" in buffer:
                _, buffer = buffer.split(b"\n\n", 1)
                arrivals.append(time.monotonic())
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert gaps[1] >= 0.25
    assert max(gaps[:1] + gaps[2:]) < 0.25


def test_error_after_sends_an_error_event_and_ends(http: httpx2.Client, server_url: str) -> None:
    response = _stream(http, server_url, "error-after=2")
    events = parse_sse(response.content)
    assert len(events) == 3
    assert events[-1].event == "error"
    assert events[-1].json() == {
        "error": {
            "message": "Injected fault: error after 2 events.",
            "type": "server_error",
            "code": "injected",
        }
    }


def test_garbage_after_and_no_done(http: httpx2.Client, server_url: str) -> None:
    events = parse_sse(_stream(http, server_url, "garbage-after=1").content)
    assert events[1].data == "{this is not json"
    assert events[-1].data == "[DONE]"
    events = parse_sse(_stream(http, server_url, "no-done").content)
    assert events[-1].data != "[DONE]"
    assert events[-1].json()["choices"][0]["finish_reason"] == "stop"


def test_status_for_the_first_attempts_then_success(http: httpx2.Client, server_url: str) -> None:
    fault = f"status=429; times=2; retry-after=1; retry-after-ms=10; key={uuid.uuid4().hex}"
    for attempt in (1, 2):
        response = _stream(http, server_url, fault)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "1"
        assert response.headers["retry-after-ms"] == "10"
        assert response.json()["error"] == {
            "message": f"Injected fault: HTTP 429 (attempt {attempt} of 2).",
            "type": "requests",
            "param": None,
            "code": "injected",
        }
    response = _stream(http, server_url, fault)
    assert response.status_code == 200
    assert parse_sse(response.content)[-1].data == "[DONE]"


def test_status_counts_per_key_across_header_values(http: httpx2.Client, server_url: str) -> None:
    key = uuid.uuid4().hex
    assert _stream(http, server_url, f"status=500;key={key}").status_code == 500
    assert _stream(http, server_url, f"status=500;key={key};should-retry=true").status_code == 200


def test_status_without_key_counts_per_header_and_applies_to_non_streams(
    http: httpx2.Client,
    server_url: str,
) -> None:
    fault = f"status=503; should-retry=false; retry-after-ms={uuid.uuid4().int % 10**6}"
    url = f"{server_url}/chat/completions"
    response = http.post(url, json=chat_body(), headers={FAULT: fault})
    assert response.status_code == 503
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["type"] == "server_error"
    assert http.post(url, json=chat_body(), headers={FAULT: fault}).status_code == 200


def test_headers_only_sends_nothing_after_the_headers(http: httpx2.Client, server_url: str) -> None:
    timeout = httpx2.Timeout(5.0, read=0.3)
    with http.stream(
        "POST",
        f"{server_url}/chat/completions",
        json=chat_body(stream=True),
        headers={FAULT: "headers-only"},
        timeout=timeout,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        with pytest.raises(httpx2.ReadTimeout):
            next(response.iter_raw())


def test_trickle_sends_only_comments(http: httpx2.Client, server_url: str) -> None:
    started = time.monotonic()
    received = b""
    with http.stream(
        "POST",
        f"{server_url}/chat/completions",
        json=chat_body(stream=True),
        headers={FAULT: "trickle=0.05"},
    ) as response:
        for data in response.iter_raw():
            received += data
            if received.count(b"\n\n") >= 3:
                break
    assert received.startswith(b": keep-alive\n\n: keep-alive\n\n: keep-alive\n\n")
    assert b"data" not in received
    assert time.monotonic() - started >= 0.1


def test_content_type_json_gets_a_json_body(http: httpx2.Client, server_url: str) -> None:
    response = _stream(http, server_url, "content-type=application/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["object"] == "chat.completion"
    response = _stream(http, server_url, "content-type=text/html")
    assert response.headers["content-type"] == "text/html"
    assert parse_sse(response.content)[-1].data == "[DONE]"


def test_huge_line(http: httpx2.Client, server_url: str) -> None:
    size = 300_000
    body = _stream(http, server_url, f"huge-line={size}").content
    first, _, line = body.partition(b"\n\n")
    assert first.startswith(b"data: {")
    assert len(line) == size
    assert line.startswith(b"data: xxx")
    assert b"\n" not in line


def test_many_lines(http: httpx2.Client, server_url: str) -> None:
    body = _stream(http, server_url, "many-lines=50000").content
    events = parse_sse(body)
    assert events[1].data == "\n".join(["x"] * 50000)
    assert events[-1].data == "[DONE]"


@pytest.fixture(scope="module")
def faulty_url() -> Iterator[str]:
    with run_in_thread(create_app(default_faults="drop-after=1")) as url:
        yield url


def test_default_faults_and_none(http: httpx2.Client, faulty_url: str) -> None:
    with pytest.raises(httpx2.RemoteProtocolError):
        http.post(f"{faulty_url}/chat/completions", json=chat_body(stream=True))
    response = _stream(http, faulty_url, "none")
    assert parse_sse(response.content)[-1].data == "[DONE]"
    response = _stream(http, faulty_url, "no-done")
    assert parse_sse(response.content)[-1].data != "[DONE]"
