"""Shared fixtures: local servers on real loopback sockets, started once per session.

- ``server_url``: base URL (``http://127.0.0.1:PORT/v1``) of a scripted-backend server.
- ``replay_url``: base URL of a replay-backend server over ``wire_dir``; a request's
  ``model`` is a recording's path relative to it, e.g. ``"openai/chat-refusal.sse"``.
- ``wire_dir``: the recorded streams, ``../shared/wire`` from the project root.

Both servers take faults per request (``X-Deltastream-Fault`` header, see
docs/faults.md). They live for the whole session: use a fresh ``key=`` for ``status``
faults, since attempts are counted per key for the server's lifetime.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deltastream.server import create_app, run_in_thread

WIRE_DIR = (Path(__file__).parents[1] / ".." / "shared" / "wire").resolve()


@pytest.fixture(scope="session")
def wire_dir() -> Path:
    return WIRE_DIR


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with run_in_thread(create_app("scripted")) as url:
        yield url


@pytest.fixture(scope="session")
def replay_url(wire_dir: Path) -> Iterator[str]:
    with run_in_thread(create_app("replay", replay_dir=wire_dir)) as url:
        yield url


@pytest.fixture(scope="session")
def llama_url() -> Iterator[str]:
    """A server running the real small model (the ``local`` extra, which make test
    installs)."""
    with run_in_thread(create_app("llama")) as url:
        yield url
