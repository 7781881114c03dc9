"""Programs written for openai-python (tests/dropin/programs/) print the same under
deltastream with only their client import changed (``from openai import OpenAI`` to
``from deltastream import OpenAI``; ``import openai`` stays, for the exceptions), run
as users run them: a fresh Python process against the local server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS = sorted((Path(__file__).parent / "programs").glob("*.py"))
_CLIENT_IMPORT = re.compile(r"^from openai import (.*)$", re.MULTILINE)


def with_deltastream(source: str) -> str:
    """The program with its client import from deltastream instead."""
    changed, count = _CLIENT_IMPORT.subn(r"from deltastream import \1", source)
    assert count == 1, "a program imports its client on exactly one line"
    return changed


def run(source: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", source],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_program_is_run() -> None:
    assert len(PROGRAMS) >= 10


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_program_prints_the_same_under_deltastream(
    program: Path, server_url: str, replay_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_"))}
    env.update(OPENAI_BASE_URL=server_url, OPENAI_API_KEY="sk-test", REPLAY_URL=replay_url)
    source = program.read_text()
    theirs = run(source, env)
    assert theirs.returncode == 0, theirs.stderr
    ours = run(with_deltastream(source), env)
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert ours.stdout.strip(), "the program printed nothing"
