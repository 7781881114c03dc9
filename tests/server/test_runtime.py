"""Running the server: health, models, stats, pacing, shutdown, CLI, the openai package."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from starlette.types import Receive, Scope, Send

from deltastream.server import add_serve_arguments, create_app, run_in_thread, run_serve
from deltastream.server.backends._compose import compose_reply

from ._sse import chat_body, parse_sse
from .test_chat import WEATHER_TOOL


def _root(base_url: str) -> str:
    return base_url.removesuffix("/v1")


def test_health(http: httpx2.Client, server_url: str) -> None:
    response = http.get(_root(server_url) + "/health")
    assert response.json() == {"status": "ok", "backend": "scripted"}


def test_models(http: httpx2.Client, server_url: str) -> None:
    body = http.get(f"{server_url}/models").json()
    assert body["object"] == "list"
    assert body["data"][0] == {
        "id": "deltastream-scripted",
        "object": "model",
        "created": 0,
        "owned_by": "deltastream",
    }


@pytest.fixture
def fresh_url() -> Iterator[str]:
    with run_in_thread(create_app()) as url:
        yield url


def _stats(client: httpx2.Client, url: str) -> dict[str, Any]:
    stats: dict[str, Any] = client.get(_root(url) + "/_deltastream/stats").json()
    return stats


def _wait_for(client: httpx2.Client, url: str, **expected: int) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while True:
        stats = _stats(client, url)
        if all(stats[name] == value for name, value in expected.items()):
            return stats
        assert time.monotonic() < deadline, (stats, expected)
        time.sleep(0.01)


def test_connection_stats_show_reuse_and_release(fresh_url: str) -> None:
    with httpx2.Client() as watcher:
        stats = _wait_for(watcher, fresh_url, open_connections=1, total_connections=1)
        assert stats["tracking"] is True
        with httpx2.Client() as client:
            for _ in range(3):
                client.post(f"{fresh_url}/chat/completions", json=chat_body(stream=True))
            stats = _stats(watcher, fresh_url)
            assert stats["open_connections"] == 2
            assert stats["total_connections"] == 2
            assert stats["total_streams"] == 3
            with client.stream(
                "POST",
                f"{fresh_url}/chat/completions",
                json=chat_body(stream=True),
                headers={"X-Deltastream-Fault": "trickle=0.02"},
            ) as response:
                # Keep a reference: dropping the iterator would close the response.
                chunks = response.iter_raw()
                next(chunks)
                assert _stats(watcher, fresh_url)["active_streams"] == 1
        # The client went away mid-stream: the server notices and lets go.
        _wait_for(watcher, fresh_url, open_connections=1, total_connections=2, active_streams=0)


def test_shutdown_is_bounded_with_a_stream_still_open() -> None:
    with httpx2.Client() as client:
        with run_in_thread(create_app()) as url:
            request = client.build_request(
                "POST",
                f"{url}/chat/completions",
                json=chat_body(stream=True),
                headers={"X-Deltastream-Fault": "trickle=0.05"},
            )
            response = client.send(request, stream=True)
            chunks = response.iter_raw()
            received = next(chunks)
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 3
        # The stream ends cleanly, with an in-band error saying why.
        received += b"".join(chunks)
        response.close()
    last = parse_sse(received)[-1]
    assert last.event == "error"
    assert last.json()["error"]["code"] == "server_shutting_down"


def test_drop_without_connection_tracking_still_breaks_the_body() -> None:
    app = create_app()

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)

    # run_in_thread cannot find the stats behind the wrapper: no tracking hook, so the
    # cut falls back to raising inside the response.
    with run_in_thread(wrapped) as url, httpx2.Client() as client:
        assert _stats(client, url)["tracking"] is False
        with pytest.raises(httpx2.RemoteProtocolError):
            client.post(
                f"{url}/chat/completions",
                json=chat_body(stream=True),
                headers={"X-Deltastream-Fault": "drop-after=1"},
            )


def test_pace_options() -> None:
    app = create_app(first_token_ms=150, tokens_per_second=200)
    with run_in_thread(app) as url, httpx2.Client() as client:
        started = time.monotonic()
        with client.stream(
            "POST", f"{url}/chat/completions", json=chat_body("Count to 5", stream=True)
        ) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            first_at = time.monotonic() - started
            events = parse_sse(first + b"".join(chunks))
        total = time.monotonic() - started
    assert first_at >= 0.14
    assert total >= 0.15 + (len(events) - 1) / 200 * 0.9


def test_openai_package_streams_from_the_server(server_url: str) -> None:
    prompt = "Write a story about a robot."
    with openai.OpenAI(base_url=server_url, api_key="unused", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="gpt-4",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
            seed=0,
        )
        text, finish, usage = "", None, None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            usage = chunk.usage or usage
        assert text == compose_reply(prompt, 0)
        assert finish == "stop"
        assert usage is not None
        assert usage.total_tokens > 0
        with client.chat.completions.stream(
            model="gpt-4",
            messages=[{"role": "user", "content": "What's the weather in Tokyo?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        ) as tool_stream:
            final = tool_stream.get_final_completion()
        call = final.choices[0].message.tool_calls
        assert call is not None
        assert json.loads(call[0].function.arguments) == {"location": "Tokyo", "unit": "celsius"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser


def test_serve_arguments() -> None:
    args = _parser().parse_args([])
    assert (args.host, args.port, args.backend) == ("127.0.0.1", 8000, None)  # auto
    assert args.faults is None
    args = _parser().parse_args(
        ["--backend", "replay", "--replay-dir", "w", "--faults", "drop-after=2", "--port", "0"]
    )
    assert (args.backend, args.replay_dir, args.faults, args.port) == (
        "replay",
        "w",
        "drop-after=2",
        0,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--faults", "explode"],
        ["--backend", "gpt"],
        ["--tokens-per-second", "0"],
        ["--first-token-ms", "-1"],
        ["--port", "70000"],
    ],
)
def test_serve_arguments_rejected(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        _parser().parse_args(argv)
    assert exc_info.value.code == 2
    capsys.readouterr()


def test_run_serve_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_serve(_parser().parse_args(["--backend", "replay"])) == 2
    assert "needs --replay-dir" in capsys.readouterr().err
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        assert run_serve(_parser().parse_args(["--port", port])) == 1
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err
    args = _parser().parse_args(["--backend", "replay", "--replay-dir", "/nonexistent/x"])
    assert run_serve(args) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_serve_in_a_subprocess_until_interrupted() -> None:
    command = [sys.executable, "-m", "deltastream.server", "--port", "0", "--backend", "scripted"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        try:
            line = process.stderr.readline()
            assert line.startswith("deltastream serve: listening on http://127.0.0.1:")
            url = line.split()[-1]
            with httpx2.Client() as client:
                response = client.post(f"{url}/chat/completions", json=chat_body("Count to 3"))
            assert response.json()["choices"][0]["message"]["content"] == "1, 2, 3."
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.stderr.close()


def test_import_error_names_the_extra() -> None:
    code = "import sys; sys.modules['uvicorn'] = None; import deltastream.server"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert result.returncode != 0
    assert 'pip install "deltastream[server]"' in result.stderr


def test_the_default_backend_is_the_real_model_when_installed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from deltastream.server._cli import _default_backend

    assert _default_backend(None) == "llama"
    # A model file that was named and is not there is an error, not scripted replies.
    assert _default_backend("/nonexistent/model.gguf") is None
    err = capsys.readouterr().err
    assert "/nonexistent/model.gguf" in err
    assert "scripted" not in err
