"""The proxy backend in front of a scripted server: same streams, recordings, faults."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from deltastream.server import create_app, run_in_thread

from ._sse import chat_body, parse_sse


def _same(body: bytes) -> bytes:
    return re.sub(rb'"created":\s*\d+', b'"created":0', body)


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    with run_in_thread(create_app("scripted", api_key="sk-upstream")) as url:
        yield url


@pytest.fixture
def proxy(upstream_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    app = create_app("proxy", upstream=upstream_url, record_dir=tmp_path)
    with run_in_thread(app) as url:
        yield url, tmp_path


AUTH = {"Authorization": "Bearer sk-upstream"}


def test_stream_through_the_proxy_is_the_direct_stream_and_is_recorded(
    http: httpx2.Client, upstream_url: str, proxy: tuple[str, Path]
) -> None:
    url, records = proxy
    body = chat_body("Write a story about a robot.", stream=True, seed=3)
    direct = http.post(f"{upstream_url}/chat/completions", json=body, headers=AUTH)
    proxied = http.post(f"{url}/chat/completions", json=body, headers=AUTH)
    assert proxied.status_code == 200
    assert proxied.headers["content-type"].startswith("text/event-stream")
    assert _same(proxied.content) == _same(direct.content)
    (recording,) = records.iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-gpt-4\.sse", recording.name)
    assert recording.read_bytes() == proxied.content
    assert b"sk-upstream" not in recording.read_bytes()


def test_record_then_replay_by_model_name(http: httpx2.Client, proxy: tuple[str, Path]) -> None:
    url, records = proxy
    body = chat_body("Count to 4", stream=True)
    proxied = http.post(f"{url}/chat/completions", json=body, headers=AUTH).content
    with run_in_thread(create_app("replay", replay_dir=records)) as replay_url:
        replayed = http.post(f"{replay_url}/chat/completions", json=body)
    assert replayed.status_code == 200
    assert replayed.content == proxied


def test_non_streamed_completion_passes_through(
    http: httpx2.Client, proxy: tuple[str, Path]
) -> None:
    url, records = proxy
    response = http.post(f"{url}/chat/completions", json=chat_body("Count to 3"), headers=AUTH)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "1, 2, 3."
    assert list(records.iterdir()) == []  # only streams are recorded


def test_models_pass_through(http: httpx2.Client, proxy: tuple[str, Path]) -> None:
    response = http.get(f"{proxy[0]}/models", headers=AUTH)
    assert response.json()["data"][0]["id"] == "deltastream-scripted"


def test_faults_apply_at_the_proxy(http: httpx2.Client, proxy: tuple[str, Path]) -> None:
    url, records = proxy
    response = http.post(
        f"{url}/chat/completions",
        json=chat_body("Count to 9", stream=True),
        headers={**AUTH, "X-Deltastream-Fault": "error-after=2"},
    )
    events = parse_sse(response.content)
    assert len(events) == 3
    assert events[-1].event == "error"
    assert events[-1].json()["error"]["code"] == "injected"
    # The proxy stopped reading the upstream early: no half recording is left behind.
    assert list(records.iterdir()) == []
    status = http.post(
        f"{url}/chat/completions",
        json=chat_body(stream=True),
        headers={**AUTH, "X-Deltastream-Fault": "status=429; key=proxy-429"},
    )
    assert status.status_code == 429
    assert status.json()["error"]["code"] == "injected"


def test_drop_at_the_proxy_breaks_the_body(proxy: tuple[str, Path]) -> None:
    with httpx2.Client() as client, pytest.raises(httpx2.RemoteProtocolError):
        client.post(
            f"{proxy[0]}/chat/completions",
            json=chat_body(stream=True),
            headers={**AUTH, "X-Deltastream-Fault": "drop-after=2"},
        )


def test_upstream_errors_pass_through_with_their_status(
    http: httpx2.Client, proxy: tuple[str, Path]
) -> None:
    url, _ = proxy
    unauthorized = http.post(f"{url}/chat/completions", json=chat_body(stream=True))
    assert unauthorized.status_code == 401
    assert "API key" in unauthorized.json()["error"]["message"]
    invalid = http.post(f"{url}/chat/completions", json={"model": "gpt-4"}, headers=AUTH)
    assert invalid.status_code == 400
    assert invalid.json()["error"]["type"] == "invalid_request_error"
    failing = create_app("scripted", default_faults="status=503; times=100; retry-after=2")
    with run_in_thread(failing) as failing_url:
        app = create_app("proxy", upstream=failing_url)
        with run_in_thread(app) as failing_proxy:
            response = http.post(f"{failing_proxy}/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"]["code"] == "injected"


def test_upstream_api_key_replaces_the_request_key(http: httpx2.Client, upstream_url: str) -> None:
    app = create_app("proxy", upstream=upstream_url, upstream_api_key="sk-upstream")
    with run_in_thread(app) as url:
        response = http.post(
            f"{url}/chat/completions",
            json=chat_body(stream=True),
            headers={"Authorization": "Bearer something-else"},
        )
    assert response.status_code == 200
    assert parse_sse(response.content)[-1].data == "[DONE]"


def test_unreachable_upstream_is_502(http: httpx2.Client) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with run_in_thread(create_app("proxy", upstream=f"http://127.0.0.1:{port}/v1")) as url:
        response = http.post(f"{url}/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"


def test_proxy_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="upstream URL"):
        create_app("proxy")
    with pytest.raises(ValueError, match="http"):
        create_app("proxy", upstream="ftp://x")
    with pytest.raises(ValueError, match="not a directory"):
        create_app("proxy", upstream="http://x/v1", record_dir=tmp_path / "missing")
