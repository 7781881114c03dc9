"""The replay backend sends recordings byte for byte, cut where the test asks."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from deltastream.server._body import split_blocks
from tests._wire import WIRE_DIR

from ._raw import dechunk, raw_post
from ._sse import parse_sse

ALL_FILES = sorted(path.relative_to(WIRE_DIR).as_posix() for path in WIRE_DIR.rglob("*.sse"))
SMALL_FILES = ["openai/chat-finish-length.sse", "openai/responses-text.sse"]


def _replay(
    http: httpx2.Client, url: str, name: str, path: str = "/chat/completions", **headers: str
) -> httpx2.Response:
    body = {"model": name, "messages": [], "stream": True}
    return http.post(url + path, json=body, headers=headers)


@pytest.mark.parametrize("name", ALL_FILES)
@pytest.mark.parametrize("chunk_size", [None, 4096])
def test_every_recording_is_replayed_exactly(
    http: httpx2.Client, replay_url: str, wire_dir: Path, name: str, chunk_size: int | None
) -> None:
    headers = {"X-Deltastream-Chunk-Size": str(chunk_size)} if chunk_size else {}
    response = _replay(http, replay_url, name, **headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.content == (wire_dir / name).read_bytes()


@pytest.mark.parametrize("name", SMALL_FILES)
@pytest.mark.parametrize("chunk_size", [1, 7, 100])
def test_writes_have_the_requested_size(
    replay_url: str, wire_dir: Path, name: str, chunk_size: int
) -> None:
    head, body, error = raw_post(
        f"{replay_url}/chat/completions",
        {"model": name},
        {"X-Deltastream-Chunk-Size": str(chunk_size)},
    )
    assert error is None
    assert head.startswith(b"HTTP/1.1 200")
    chunks, terminated = dechunk(body)
    assert terminated
    assert b"".join(chunks) == (wire_dir / name).read_bytes()
    assert {len(chunk) for chunk in chunks[:-1]} == {chunk_size}
    assert 0 < len(chunks[-1]) <= chunk_size


@pytest.mark.parametrize("name", SMALL_FILES)
def test_default_writes_are_event_blocks(replay_url: str, wire_dir: Path, name: str) -> None:
    _, body, _ = raw_post(f"{replay_url}/responses", {"model": name})
    chunks, terminated = dechunk(body)
    assert terminated
    data = (wire_dir / name).read_bytes()
    assert chunks == list(split_blocks(data))
    assert all(chunk.endswith(b"\n\n") for chunk in chunks)


@pytest.mark.parametrize(
    "name",
    [
        "../DESIGN.md",
        "openai/../../DESIGN.md",
        "/etc/passwd",
        "openai/missing.sse",
        "openai",
        "",
    ],
)
def test_paths_outside_or_missing_are_404(http: httpx2.Client, replay_url: str, name: str) -> None:
    response = _replay(http, replay_url, name)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "model_not_found"
    assert f"`{name}`" in error["message"]


def test_model_must_be_given(http: httpx2.Client, replay_url: str) -> None:
    response = http.post(f"{replay_url}/chat/completions", json={"messages": []})
    assert response.status_code == 400


def test_models_lists_the_recordings(http: httpx2.Client, replay_url: str) -> None:
    data = http.get(f"{replay_url}/models").json()["data"]
    assert [model["id"] for model in data] == ALL_FILES


def test_faults_apply_to_replays(http: httpx2.Client, replay_url: str) -> None:
    name = "openai/chat-text-usage-chunk.sse"
    events = parse_sse(
        _replay(http, replay_url, name, **{"X-Deltastream-Fault": "no-done"}).content
    )
    assert events[-1].json()["usage"]["total_tokens"] == 44
    with pytest.raises(httpx2.RemoteProtocolError):
        _replay(http, replay_url, name, **{"X-Deltastream-Fault": "drop-after=3"})


def test_error_event_has_the_responses_shape_on_responses_paths(
    http: httpx2.Client, replay_url: str
) -> None:
    response = _replay(
        http,
        replay_url,
        "openai/responses-text.sse",
        "/responses",
        **{"X-Deltastream-Fault": "error-after=1"},
    )
    events = parse_sse(response.content)
    assert len(events) == 2
    assert events[1].event == "error"
    assert events[1].json() == {
        "type": "error",
        "code": "injected",
        "message": "Injected fault: error after 1 events.",
        "param": None,
    }


BACKGROUND = "openai/responses-background-resume.sse"
BACKGROUND_ID = "resp_0850765c843cca5300699cc47d93c0819089a181f5feeff8eb"


@pytest.mark.parametrize("after", [None, 0, 5, 10_000])
def test_responses_resume_from_a_cursor(
    http: httpx2.Client, replay_url: str, wire_dir: Path, after: int | None
) -> None:
    blocks = list(split_blocks((wire_dir / BACKGROUND).read_bytes()))
    params = {"stream": "true"} | ({} if after is None else {"starting_after": str(after)})
    response = http.get(f"{replay_url}/responses/{BACKGROUND_ID}", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    expected = {None: blocks, 0: blocks, 5: blocks[5:], 10_000: []}[after]
    assert response.content == b"".join(expected)
    if after == 5:
        assert parse_sse(response.content)[0].json()["sequence_number"] == 6


def test_responses_retrieve_without_stream(http: httpx2.Client, replay_url: str) -> None:
    response = http.get(f"{replay_url}/responses/{BACKGROUND_ID}")
    body = response.json()
    assert body["id"] == BACKGROUND_ID
    assert body["status"] == "completed"


def test_responses_retrieve_errors(http: httpx2.Client, replay_url: str) -> None:
    response = http.get(f"{replay_url}/responses/resp_missing", params={"stream": "true"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Response with id 'resp_missing' not found."
    response = http.get(
        f"{replay_url}/responses/{BACKGROUND_ID}", params={"stream": "true", "starting_after": "x"}
    )
    assert response.status_code == 400
