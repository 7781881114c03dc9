"""The deltastream command, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, base_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return subprocess.run(
        [sys.executable, "-m", "deltastream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_chat_runs_the_local_model_when_no_server_is_configured() -> None:
    result = run_cli("chat", "Write a story about a robot.", "--max-tokens", "24", "--stats")
    assert result.returncode == 0, result.stderr
    assert "no OPENAI_BASE_URL set; using a local server with a small model" in result.stderr
    assert len(result.stdout.split()) >= 5  # real generated words
    assert "completion tokens: 24" in result.stderr


def test_chat_uses_the_configured_server_and_reports_stats(server_url: str) -> None:
    result = run_cli("chat", "Count to 5", "--stats", base_url=server_url)
    assert result.returncode == 0, result.stderr
    assert "1" in result.stdout
    assert "local server" not in result.stderr
    assert "time to first token" in result.stderr
    assert "tokens/s" in result.stderr


def test_chat_json_prints_one_chunk_per_line(server_url: str) -> None:
    result = run_cli("chat", "Hello!", "--json", base_url=server_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) > 2
    assert all(line.startswith('{"id":') for line in lines)


def test_chat_reports_errors_without_a_traceback(server_url: str) -> None:
    bad = server_url.rsplit(":", 1)[0] + ":1/v1"  # nothing listens on port 1
    result = run_cli("chat", "hi", base_url=bad)
    assert result.returncode == 1
    assert "APIConnectionError" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [[], ["--version"]])
def test_help_and_version(args: list[str]) -> None:
    result = run_cli(*args)
    assert ("deltastream" in result.stdout + result.stderr) is True


def test_replay_prints_what_a_recording_accumulates_to(wire_dir: Path) -> None:
    result = run_cli("replay", str(wire_dir / "openai" / "chat-parallel-tool-calls.sse"))
    assert result.returncode == 0, result.stderr
    assert "GetWeatherArgs" in result.stdout
    assert "get_stock_price" in result.stdout
