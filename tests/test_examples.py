"""Each example in examples/ (the streaming guide's, import line changed, and our own)
runs as a user would run it: a fresh Python process with OPENAI_BASE_URL at the local
server, with the scripted backend and with the real model (the default of
`deltastream serve`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltastream.server import create_app, run_in_thread

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# What each example must print (a piece of it), beyond running without error: against
# the scripted backend, and against the real model (None: not run on it here, since it
# would only repeat the plain streaming path that tests/server/test_llama.py covers, at
# the model's pace).
EXPECTED: dict[str, tuple[str, str | None]] = {
    "sync_streaming.py": ("robot", None),
    "async_streaming.py": ("robot", None),
    "stream_object.py": ("content-type", None),
    "context_manager.py": ("Hello", None),
    "stream_chunks.py": ("Finish: stop", None),
    "accumulating.py": ("Full response: ", None),
    # The guide reads the legacy delta.function_call: with one tool offered, the local
    # server carries the call there too (docs/server.md).
    "function_calling.py": (
        "Function: get_weather\nArguments: {'location': 'Tokyo'",
        "Function: get_weather",
    ),
    "error_handling.py": ("Hello", None),
    "async_error_handling.py": ("Why", None),
    "manual_control.py": ("1", None),
    "tool_calls.py": ("Arguments: {'location': 'Tokyo'", "Function: get_weather"),
    "responses_streaming.py": ("ResponseCompletedEvent(", "ResponseTextDeltaEvent("),
    "responses_resume.py": ("each once and in order: True", "each once and in order: True"),
}


@pytest.fixture(scope="module")
def model_url() -> Iterator[str]:
    """The real model, with replies capped at 96 tokens when the example sets no limit."""
    pytest.importorskip("llama_cpp")
    with run_in_thread(create_app("llama", default_max_tokens=96)) as url:
        yield url


def run_example(name: str, base_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_BASE_URL"] = base_url
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def reports_an_error(output: str) -> bool:
    """Whether the output mentions an error, beyond the empty ``error`` field that
    openai's objects print (``error=None``)."""
    return re.search(r"error(?!=none)", output.lower()) is not None


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_against_the_scripted_server(server_url: str, name: str) -> None:
    result = run_example(name, server_url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert EXPECTED[name][0] in result.stdout
    assert not reports_an_error(result.stdout)


@pytest.mark.parametrize("name", sorted(n for n, (_, real) in EXPECTED.items() if real is not None))
def test_example_runs_against_the_real_model(model_url: str, name: str) -> None:
    result = run_example(name, model_url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.strip()
    assert (EXPECTED[name][1] or "") in result.stdout
