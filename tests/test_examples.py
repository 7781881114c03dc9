"""Each example in examples/ (the streaming guide's, import line changed) runs as a
user would run it: a fresh Python process with OPENAI_BASE_URL at the local server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# What each example must print (a piece of it), beyond running without error.
EXPECTED = {
    "sync_streaming.py": "robot",
    "async_streaming.py": "robot",
    "stream_object.py": "content-type",
    "context_manager.py": "Hello",
    "stream_chunks.py": "Finish: stop",
    "accumulating.py": "Full response: ",
    "function_calling.py": "",  # reads the legacy field: servers answer tools= otherwise
    "error_handling.py": "Hello",
    "async_error_handling.py": "Why",
    "manual_control.py": "1",
    "tool_calls.py": "Arguments: {'location': 'Tokyo'",
}


def test_every_example_is_listed() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_against_the_local_server(server_url: str, name: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_BASE_URL"] = server_url
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert EXPECTED[name] in result.stdout
    assert "error" not in result.stdout.lower()
