"""Shutting down with a stream open, and the access log."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import time

import httpx2
import pytest

from deltastream.server import create_app, run_in_thread

from ._sse import chat_body, parse_sse


def test_ctrl_c_ends_an_open_stream_cleanly() -> None:
    command = [sys.executable, "-m", "deltastream.server", "--port", "0", "--no-access-log"]
    command += ["--backend", "scripted"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        try:
            url = process.stderr.readline().split()[-1]
            with httpx2.Client(timeout=10) as client:
                request = client.build_request(
                    "POST",
                    f"{url}/chat/completions",
                    json=chat_body(stream=True),
                    headers={"X-Deltastream-Fault": "stall-after=2:60"},
                )
                response = client.send(request, stream=True)
                chunks = response.iter_raw()
                received = next(chunks)
                stopping = time.monotonic()
                process.send_signal(signal.SIGINT)
                received += b"".join(chunks)  # ends: no hang, no protocol error
                response.close()
            assert time.monotonic() - stopping < 5
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.stderr.close()
    events = parse_sse(received)
    assert len(events) == 3
    assert events[-1].event == "error"
    assert events[-1].json()["error"]["code"] == "server_shutting_down"


def test_one_access_log_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(api_key="sk-secret-key-1234")
    with caplog.at_level(logging.INFO, logger="deltastream.server"):
        with run_in_thread(app) as url, httpx2.Client() as client:
            auth = {"Authorization": "Bearer sk-secret-key-1234"}
            client.post(f"{url}/chat/completions", json=chat_body(stream=True), headers=auth)
            client.post(f"{url}/chat/completions", json=chat_body(model="gpt-4o"), headers=auth)
            client.get(f"{url}/models")
            client.get(url.removesuffix("/v1") + "/health")
        lines = [r.getMessage() for r in caplog.records if r.name == "deltastream.server"]
    assert len(lines) == 4, lines
    # A stream is logged when its last byte has gone: the order may vary.
    lines.sort()
    assert re.fullmatch(r"GET /health 200 \d+\.\dms model=-", lines[0])
    assert re.fullmatch(r"GET /v1/models 401 \d+\.\dms model=-", lines[1])
    posts = sorted(re.sub(r" \d+\.\dms ", " T ", line) for line in lines[2:])
    assert posts == [
        "POST /v1/chat/completions 200 T model=gpt-4",
        "POST /v1/chat/completions 200 T model=gpt-4o",
    ]
    assert not any("sk-secret" in line for line in caplog.text.splitlines())


def test_access_log_is_on_stderr_under_serve() -> None:
    command = [sys.executable, "-m", "deltastream.server", "--port", "0", "--backend", "scripted"]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        try:
            url = process.stderr.readline().split()[-1]
            with httpx2.Client() as client:
                client.post(f"{url}/chat/completions", json=chat_body("Count to 2"))
            line = process.stderr.readline()
            assert "POST /v1/chat/completions 200 " in line
            assert line.rstrip().endswith("model=gpt-4")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.stderr.close()
