"""Opening connections: Happy Eyeballs (RFC 8305) over a name whose first address never
answers, and a connect deadline that a busy event loop does not trip. The name is
resolved by a hosts-style mapping of the test's own (``socket.getaddrinfo``, which
both transports use, patched); the address that never answers is a listener whose
accept queue is full, so the kernel drops the connection attempts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from deltastream.transport import AsyncHTTP11Transport
from deltastream.transport._dial import Address, interleave

from ._raw_server import Reply, Seen, Serve, ok
from ._twins import KINDS, Twin

V4, V6 = socket.AF_INET, socket.AF_INET6
Hosts = dict[str, list[tuple[str, int]]]


def echo(seen: Seen) -> Reply:
    return ok(seen.target.encode())


@pytest.fixture
def hosts(monkeypatch: pytest.MonkeyPatch) -> Hosts:
    """Names the test maps to (ip, port) pairs, in the order the resolver returns them."""
    mapping: Hosts = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in mapping:
            return real(host, port, *args, **kwargs)
        found = []
        for ip, mapped_port in mapping[host]:
            family = V6 if ":" in ip else V4
            sockaddr = (ip, mapped_port) if family == V4 else (ip, mapped_port, 0, 0)
            found.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return found

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return mapping


@contextlib.contextmanager
def silent(host: str) -> Iterator[int]:
    """A port on ``host`` where connection attempts go unanswered."""
    family = V6 if ":" in host else V4
    with socket.create_server((host, 0), family=family, backlog=0) as listener:
        address = listener.getsockname()
        fillers = [socket.socket(family) for _ in range(4)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(address)
            time.sleep(0.05)
            try:
                socket.create_connection(address[:2], 0.2).close()
            except TimeoutError:
                pass
            else:
                pytest.skip("this kernel does not drop connections over the backlog")
            yield address[1]
        finally:
            for filler in fillers:
                filler.close()


def refused(host: str) -> int:
    """A port on ``host`` that refuses connections (bound, not listening, released)."""
    family = V6 if ":" in host else V4
    with socket.socket(family) as bound:
        bound.bind((host, 0))
        port: int = bound.getsockname()[1]
    return port


# --- address order (RFC 8305 section 4) --------------------------------------------------


def a(family: int, name: str) -> Address:
    return (family, socket.SOCK_STREAM, 6, (name, 443))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        (["6a", "6b", "4a", "4b"], ["6a", "4a", "6b", "4b"]),
        (["4a", "6a", "6b", "6c"], ["4a", "6a", "6b", "6c"]),
        (["4a", "4b", "4c", "6a"], ["4a", "6a", "4b", "4c"]),
        (["6a", "4a", "6b", "4b"], ["6a", "4a", "6b", "4b"]),
    ],
)
def test_families_take_turns_from_the_first_ones(given: list[str], expected: list[str]) -> None:
    addresses = [a(V6 if name[0] == "6" else V4, name) for name in given]
    assert [address[3][0] for address in interleave(addresses)] == expected


# --- over sockets --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_dead_first_address_does_not_use_up_the_connect_deadline(
    kind: str, serve: Serve, hosts: Hosts
) -> None:
    """httpx2 gets through here; one attempt at a time under one deadline did not. The
    working address is tried 250 ms after the dead one, well within the deadline."""
    server = serve(echo)
    with silent("::1") as dead:
        hosts["dual.test"] = [("::1", dead), ("127.0.0.1", server.address[1])]
        timeout = httpx2.Timeout(5.0, connect=2.0)
        with Twin(kind, timeout=timeout) as twin:
            assert twin.request("GET", "http://dual.test:1/x").text == "/x"
            assert twin.request("GET", "http://dual.test:1/y").text == "/y"  # reused
    assert server.connections_of() == [0, 0]


@pytest.mark.parametrize("kind", KINDS)
def test_every_address_dead_is_a_connect_timeout(kind: str, hosts: Hosts) -> None:
    with silent("::1") as dead6, silent("127.0.0.1") as dead4:
        hosts["dead.test"] = [("::1", dead6), ("127.0.0.1", dead4)]
        with (
            Twin(kind, timeout=httpx2.Timeout(5.0, connect=0.4)) as twin,
            pytest.raises(httpx2.ConnectTimeout),
        ):
            twin.request("GET", "http://dead.test/")


@pytest.mark.parametrize("kind", KINDS)
def test_every_address_refused_names_them_all(kind: str, hosts: Hosts) -> None:
    hosts["closed.test"] = [("127.0.0.1", refused("127.0.0.1")), ("::1", refused("::1"))]
    with Twin(kind) as twin, pytest.raises(httpx2.ConnectError) as caught:
        twin.request("GET", "http://closed.test/")
    message = str(caught.value)
    assert message.startswith("All connection attempts failed")
    assert message.count("refused") == 2
    assert "[::1]:" in message
    assert "127.0.0.1:" in message


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_address_moves_on_at_once(kind: str, serve: Serve, hosts: Hosts) -> None:
    server = serve(echo)
    hosts["half.test"] = [("127.0.0.1", refused("127.0.0.1")), ("127.0.0.1", server.address[1])]
    with Twin(kind) as twin:
        assert twin.request("GET", "http://half.test/ok").text == "/ok"


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_a_connection_made_while_the_loop_was_busy_is_not_a_timeout(
    kind: str, serve: Serve
) -> None:
    """Ten thousand streams starting at once keep the loop busy building requests for
    seconds after the first connects: the kernel made the connection in time, only the
    loop looked late. Here the request starts connecting, then other tasks hold the
    loop for three times the connect deadline."""
    server = serve(echo)

    def hog() -> None:
        time.sleep(0.2)

    async def main() -> str:
        transport = AsyncHTTP11Transport()
        timeout = httpx2.Timeout(5.0, connect=0.2)
        async with httpx2.AsyncClient(transport=transport, timeout=timeout) as client:
            # Scheduled after the request's first step, which runs up to the connect.
            request = asyncio.create_task(client.get(server.url + "/late"))
            for _ in range(3):
                asyncio.get_running_loop().call_soon(hog)
            return (await request).text

    factory = None
    if kind == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(main()) == "/late"
