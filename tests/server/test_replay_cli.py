"""``deltastream replay FILE``: a recording, fed through the client, printed as a result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltastream.server._replay_cli import is_responses_stream, replay_file_main
from tests._wire import WIRE_DIR

CHAT_FILES = sorted(p.relative_to(WIRE_DIR).as_posix() for p in WIRE_DIR.rglob("*.sse"))
CHAT_FILES = [
    name for name in CHAT_FILES if not is_responses_stream((WIRE_DIR / name).read_bytes())
]


@pytest.mark.parametrize("name", CHAT_FILES)
def test_every_chat_recording_replays(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = replay_file_main(str(WIRE_DIR / name), json_output=True)
    out = capsys.readouterr().out
    assert code in (0, 1)
    completion = json.loads(out)
    assert isinstance(completion["choices"], list)


def test_tool_calls_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_file_main(str(WIRE_DIR / "openai/chat-parallel-tool-calls.sse"), False) == 0
    out = capsys.readouterr().out
    assert 'get_stock_price({"ticker": "AAPL", "exchange": "NASDAQ"})' in out
    assert "finish_reason: tool_calls" in out
    assert "usage: prompt=149 completion=60 total=209" in out


def test_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_file_main(str(WIRE_DIR / "openai/chat-refusal.sse"), False) == 0
    assert "refusal: I'm sorry, I can't assist with that request." in capsys.readouterr().out


def test_in_band_error_is_shown(capsys: pytest.CaptureFixture[str]) -> None:
    errors = [p for p in WIRE_DIR.rglob("chat-*error*.sse")]
    assert errors
    for path in errors:
        assert replay_file_main(str(path), False) == 1
        out = capsys.readouterr().out
        assert "error: APIStreamError: " in out


def test_truncated_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (WIRE_DIR / "openai/chat-refusal.sse").read_bytes()
    path = tmp_path / "cut.sse"
    path.write_bytes(data[: data.index(b"data: [DONE]")])
    assert replay_file_main(str(path), False) == 1
    out = capsys.readouterr().out
    assert "refusal: I'm sorry" in out
    assert "StreamTruncatedError" in out


def test_responses_streams_are_not_supported(capsys: pytest.CaptureFixture[str]) -> None:
    for path in WIRE_DIR.glob("*/responses-*.sse"):
        assert replay_file_main(str(path), False) == 2
        assert "Responses streams are not supported yet" in capsys.readouterr().err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_file_main(str(tmp_path / "nope.sse"), False) == 2
    assert "cannot read" in capsys.readouterr().err
