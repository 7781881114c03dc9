"""Replays at a chosen pace: as fast as possible, N events per second, or the scripted pace."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2
import pytest

from deltastream.server import create_app, run_in_thread
from deltastream.server._pace import parse_replay_pace

from .test_runtime import _parser


def _ten_events(folder: Path) -> Path:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    lines = [
        "data: " + json.dumps({**chunk, "choices": [{"index": 0, "delta": {"content": f"{i} "}}]})
        for i in range(9)
    ]
    path = folder / "ten.sse"
    path.write_bytes("".join(line + "\n\n" for line in [*lines, "data: [DONE]"]).encode())
    return path


def _timed_replay(url: str, name: str) -> tuple[float, bytes]:
    started = time.monotonic()
    with httpx2.Client(timeout=10) as client:
        body = client.post(f"{url}/chat/completions", json={"model": name, "stream": True})
    return time.monotonic() - started, body.content


@pytest.mark.parametrize(
    "options",
    [
        {"replay_pace": 50},
        {"replay_pace": "50"},
        {"tokens_per_second": 50},
        {"replay_pace": "asfast", "tokens_per_second": 50},
        {"first_token_ms": 200},
    ],
)
def test_paced_replay_takes_its_time(tmp_path: Path, options: dict[str, object]) -> None:
    recording = _ten_events(tmp_path)
    with run_in_thread(create_app("replay", replay_dir=tmp_path, **options)) as url:  # type: ignore[arg-type]
        elapsed, body = _timed_replay(url, "ten.sse")
    assert body == recording.read_bytes()
    assert elapsed >= 0.15


def test_replay_is_as_fast_as_possible_by_default(tmp_path: Path) -> None:
    recording = _ten_events(tmp_path)
    with run_in_thread(create_app("replay", replay_dir=tmp_path, replay_pace="asfast")) as url:
        elapsed, body = _timed_replay(url, "ten.sse")
    assert body == recording.read_bytes()
    assert elapsed < 5  # loose: no pauses were added, whatever the machine's speed


def test_parse_replay_pace() -> None:
    assert parse_replay_pace("asfast") is None
    assert parse_replay_pace(" ASFAST ") is None
    assert parse_replay_pace("12.5") == 12.5
    for bad in ("0", "-3", "fast", "inf", "nan", ""):
        with pytest.raises(ValueError, match="replay pace"):
            parse_replay_pace(bad)
    with pytest.raises(ValueError, match="replay pace"):
        create_app("replay", replay_dir=".", replay_pace="slow")
    with pytest.raises(ValueError, match="replay_pace"):
        create_app("replay", replay_dir=".", replay_pace=0)


def test_replay_pace_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert _parser().parse_args([]).replay_pace is None
    assert _parser().parse_args(["--replay-pace", "asfast"]).replay_pace is None
    assert _parser().parse_args(["--replay-pace", "20"]).replay_pace == 20.0
    with pytest.raises(SystemExit):
        _parser().parse_args(["--replay-pace", "0"])
    assert "replay pace" in capsys.readouterr().err
