"""Shared fixtures: local servers on real loopback sockets, started once per session.

- ``server_url``: base URL (``http://127.0.0.1:PORT/v1``) of a scripted-backend server.
- ``private_url``: like ``server_url``, but a server of the test's own.
- ``replay_url``: base URL of a replay-backend server over ``wire_dir``; a request's
  ``model`` is a recording's path relative to it, e.g. ``"openai/chat-refusal.sse"``.
- ``wire_dir``: the recorded streams, ``../shared/wire`` from the project root.
- ``serve``: scripted raw-socket HTTP servers (tests/_raw_server.py) for the transport
  tests; ``tls_server`` is one over TLS with a self-signed ``certificate``.

Both servers take faults per request (``X-Deltastream-Fault`` header, see
docs/faults.md). They live for the whole session: use a fresh ``key=`` for ``status``
faults, since attempts are counted per key for the server's lifetime.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from deltastream.server import create_app, run_in_thread

from ._raw_server import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    RawServer,
    Reply,
    Seen,
    Serve,
    chunk,
    raw_servers,
    self_signed_certificate,
)
from ._wire import WIRE_DIR, missing

# The async transport's own tests run under uvloop as well: its transports are not
# asyncio's classes, and its sockets refuse some calls asyncio's allow.
_BOTH_LOOPS = {"test_atransport.py", "test_connection_ownership.py", "test_lifecycle.py"}


def pytest_configure(config: pytest.Config) -> None:
    problem = missing()
    if problem is not None:  # say so once, before every test that reads them fails
        raise pytest.UsageError(problem)


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    name = item.path.name
    if name == "test_uvloop.py":
        return {"uvloop": _uvloop_factory()}
    if name in _BOTH_LOOPS:
        return {"asyncio": asyncio.new_event_loop, "uvloop": _uvloop_factory()}
    return {"asyncio": asyncio.new_event_loop}


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    return uvloop.new_event_loop


@pytest.fixture(scope="session")
def wire_dir() -> Path:
    return WIRE_DIR


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with run_in_thread(create_app("scripted")) as url:
        yield url


@pytest.fixture
def private_url() -> Iterator[str]:
    """A server of the test's own, so its connection counts are the test's alone."""
    with run_in_thread(create_app()) as url:
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


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start raw servers; all are stopped at teardown, and a handler's failure fails the test."""
    with raw_servers() as start:
        yield start


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made by the openssl command)."""
    made = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("no openssl command")
    return made


@pytest.fixture
def tls_server(serve: Serve, certificate: tuple[Path, Path]) -> RawServer:
    """A TLS server that answers each request with its target, as a chunked body."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)

    def handler(seen: Seen) -> Reply:
        return Reply([CHUNKED_HEAD, 0.01, chunk(seen.target.encode()), 0.01, LAST_CHUNK])

    return serve(handler, tls=context)
