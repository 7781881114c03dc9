"""What servers do that the transports must take: answering before the request is
read, folded header lines, closing a reused connection without a word (and who may
send the request again then), and a process with more than 1,024 descriptors open.
Both transports, over real sockets (tests/_raw_server.py and a server here that
answers as soon as it has the request head)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

import deltastream
from deltastream.transport import RESEND_STALE_EXTENSION

from ._helpers import chunk_json, sse_body
from ._raw_server import PATIENCE, POLL, Handler, Reply, Seen, Serve, ok, response, wait_until
from ._twins import KINDS, Twin

BIG = 16 * 1024 * 1024  # more than any socket buffer takes: the server must read to get it
TOO_BIG = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\nConnection: close\r\n\r\ntoo big"


class EarlyServer:
    """Answers each connection as soon as the request head is in, without reading the
    body; then closes it (``then="close"``: unread data makes that a reset) or leaves
    it open and unread (``then="hold"``) until the test ends."""

    def __init__(self, answer: bytes, then: str) -> None:
        self.answer = answer
        self.then = then
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(POLL)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.heads: list[bytes] = []
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            sock.settimeout(PATIENCE)
            buffer = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in buffer:
                    buffer += sock.recv(4096)
                self.heads.append(buffer.partition(b"\r\n\r\n")[0])
                sock.sendall(self.answer)
            if self.then == "hold":
                self._held.append(sock)
            else:
                sock.close()

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(PATIENCE)
        for sock in self._held:
            sock.close()


@pytest.fixture
def early() -> Iterator[list[EarlyServer]]:
    servers: list[EarlyServer] = []
    yield servers
    for server in servers:
        server.stop()


def early_server(servers: list[EarlyServer], answer: bytes, then: str) -> EarlyServer:
    server = EarlyServer(answer, then)
    servers.append(server)
    return server


def chat(
    kind: str, options: dict[str, Any], messages: list[dict[str, str]], times: int = 1
) -> list[str | None]:
    """``times`` streams, one after the other, on one client of ``kind`` ("sync" or
    "async"); the text of each."""
    texts: list[str | None] = []
    if kind == "sync":
        with deltastream.Client(**options) as client:
            for _ in range(times):
                stream = client.chat.completions.create(model="m", messages=messages, stream=True)
                texts.append(stream.get_final_completion().choices[0].message.content)
        return texts

    async def main() -> None:
        async with deltastream.AsyncClient(**options) as client:
            for _ in range(times):
                stream = await client.chat.completions.create(
                    model="m", messages=messages, stream=True
                )
                completion = await stream.get_final_completion()
                texts.append(completion.choices[0].message.content)

    asyncio.run(main())
    return texts


# --- answers before the request is read ---------------------------------------------------


@pytest.mark.parametrize("then", ["close", "hold"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_answer_before_the_body_was_read_is_returned(
    kind: str, then: str, early: list[EarlyServer]
) -> None:
    """As nginx does with a body over its limit: 413, then close. Sending fails (or,
    when the server only stops reading, stops); the 413 is the result, not the write
    error, and the connection is not used again."""
    server = early_server(early, TOO_BIG.replace(b"Connection: close\r\n", b""), then)
    timeout = httpx2.Timeout(5.0, write=0.5)
    with Twin(kind, timeout=timeout) as twin:
        resp = twin.request("POST", server.url + "/upload", content=b"x" * BIG)
        assert (resp.status_code, resp.text) == (413, "too big")
        second = twin.request("POST", server.url + "/upload", content=b"small")
        assert second.status_code == 413
    assert server.connections == 2


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_early_413_reaches_the_caller_once(kind: str, early: list[EarlyServer]) -> None:
    """Through the client: the status error, and no retries (a write error was retried
    twice)."""
    body = b'{"error": {"message": "request too large"}}'
    answer = response(body, b"Connection: close\r\n", status=b"413 Payload Too Large")
    server = early_server(early, answer, "close")
    huge = [{"role": "user", "content": "x" * BIG}]
    options: dict[str, Any] = {"base_url": server.url + "/v1", "api_key": "x"}
    # By message: the error classes are the native client's (APIStatusError here).
    with pytest.raises(Exception, match=r"^Error code: 413 - request too large$") as caught:
        chat(kind, options, huge)
    assert getattr(caught.value, "status_code", None) == 413
    assert server.connections == 1


# --- folded header lines --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_folded_header_line_is_unfolded(kind: str, serve: Serve) -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n\tsecond\r\n"
        b"Transfer-Encoding:\r\n chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    server = serve(lambda seen: Reply([head]))
    with Twin(kind) as twin:
        resp = twin.request("GET", server.url)
    assert resp.headers["x-folded"] == "first second"
    assert resp.text == "ok"


# --- a reused connection closed without an answer -----------------------------------------


def first_only(reply: Reply) -> Handler:
    """The first request on each connection gets ``reply``; the next is read, then the
    connection is closed without a word (the keep-alive race, from the server's side)."""
    counts: Counter[int] = Counter()

    def handler(seen: Seen) -> Reply:
        counts[seen.connection] += 1
        return reply if counts[seen.connection] == 1 else Reply(close=True)

    return handler


@pytest.mark.parametrize(
    ("method", "allowed", "resent"),
    [
        ("POST", None, False),
        ("POST", False, False),
        ("POST", True, True),
        ("GET", None, True),
        ("HEAD", None, True),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_who_is_sent_again_after_a_stale_connection(
    kind: str, method: str, allowed: bool | None, resent: bool, serve: Serve
) -> None:
    server = serve(first_only(ok()))
    with Twin(kind) as twin:
        assert twin.request("GET", server.url + "/first").status_code == 200
        content = b"generate" if method == "POST" else None
        request = twin.build(method, server.url + "/again", content=content)
        if allowed is not None:
            request.extensions[RESEND_STALE_EXTENSION] = allowed
        if resent:
            assert twin.send(request).status_code == 200
        else:
            with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
                twin.send(request)
    again = [seen.connection for seen in server.seen if seen.target == "/again"]
    assert again == ([0, 1] if resent else [0])


def _closed_after_answering(steps_after: list[bytes | float]) -> Handler:
    """Answers the first request on each connection, plays ``steps_after`` and closes
    it, without a ``Connection: close``: the close comes while the client holds it idle."""
    return lambda seen: Reply([response(b"ok"), *steps_after], close=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("allowed", [False, True])
def test_an_idle_connection_the_server_closed_at_once_is_not_what_a_request_fails_on(
    kind: str, allowed: bool, serve: Serve
) -> None:
    """Closed just after it was given back: a request that may not go out twice is sent
    on a new connection (the pool asks the kernel first); one that may, too, whether
    the pool asked first or sent it again after the stale one ended."""
    server = serve(_closed_after_answering([]))
    with Twin(kind) as twin:
        assert twin.request("GET", server.url + "/first").status_code == 200
        assert wait_until(lambda: 0 in server.closed_by_server)
        request = twin.build("POST", server.url + "/again", content=b"generate")
        request.extensions[RESEND_STALE_EXTENSION] = allowed
        assert twin.send(request).status_code == 200
    assert [seen.connection for seen in server.seen if seen.target == "/again"] == [1]


@pytest.mark.parametrize("kind", KINDS)
def test_what_a_server_said_on_an_idle_connection_is_not_the_next_answer(
    kind: str, serve: Serve
) -> None:
    """A server that times an idle connection out may say so (a 408) before it closes
    it. That comes after its idle timeout, seconds long; a connection idle that long is
    checked before reuse, even for a request that could be sent again."""
    timed_out = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    server = serve(_closed_after_answering([1.2, timed_out]))
    with Twin(kind) as twin:
        assert twin.request("GET", server.url + "/first").status_code == 200
        assert wait_until(lambda: 0 in server.closed_by_server)
        again = twin.request("GET", server.url + "/again")  # a GET may always be resent
        assert (again.status_code, again.text) == (200, "ok")
    assert [seen.connection for seen in server.seen if seen.target == "/again"] == [1]


CHAT = [{"role": "user", "content": "hi"}]
SSE = response(sse_body(chunk_json("hi", finish="stop")), b"Content-Type: text/event-stream\r\n")


@pytest.mark.parametrize("retries", [0, 1])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_generation_is_sent_twice_only_if_the_retry_policy_allows(
    kind: str, retries: int, serve: Serve
) -> None:
    """With ``max_retries=0`` a stream whose reused connection closes is an error, and
    the server saw the request once: it may have started (and billed) a generation."""
    server = serve(first_only(Reply([SSE])))
    options: dict[str, Any] = {"base_url": server.url + "/v1", "api_key": "x"}
    options["max_retries"] = retries
    if retries:
        assert chat(kind, options, CHAT, times=2) == ["hi", "hi"]
        assert server.connections_of() == [0, 0, 1]
    else:
        with pytest.raises(Exception, match=r"^Connection error: Server disconnected"):
            chat(kind, options, CHAT, times=2)  # APIConnectionError
        assert server.connections_of() == [0, 0]


# --- many descriptors ------------------------------------------------------------------------


@contextlib.contextmanager
def descriptors_past(limit: int) -> Iterator[None]:
    """Open descriptors until the next one's number is above ``limit``."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limit + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the hard limit on open files is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    held: list[int] = []
    try:
        while not held or held[-1] <= limit:
            held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("kind", KINDS)
def test_connections_are_reused_past_1024_descriptors(kind: str, serve: Serve) -> None:
    """``select()`` refuses descriptors from 1,024 on: a liveness check built on it
    found every idle connection unusable, and each request opened a new one."""
    server = serve(lambda seen: ok())
    with descriptors_past(1024), Twin(kind) as twin:
        for _ in range(3):
            assert twin.request("GET", server.url).status_code == 200
    assert server.connections_of() == [0, 0, 0]
