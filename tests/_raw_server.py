"""A scripted HTTP/1.1 server on raw sockets, for the transport tests (sync and async).

Each reply is the exact bytes to write, so framing, keep-alive and failures are the
test's to choose; the server records which connection carried which request, and which
side closed each connection. It runs in threads, so it works the same under a blocking
client and under an event loop."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "CHUNKED_HEAD",
    "LAST_CHUNK",
    "PATIENCE",
    "POLL",
    "Handler",
    "RawServer",
    "Reply",
    "Seen",
    "Serve",
    "Step",
    "chunk",
    "ok",
    "open_body",
    "raw_servers",
    "response",
    "self_signed_certificate",
    "wait_until",
]

POLL = 0.05  # how often server threads look at the stop flag
PATIENCE = 5.0  # the longest any server thread waits for anything


@dataclass
class Seen:
    """One request as the server read it."""

    connection: int  # which accepted connection carried it, counting from 0
    method: str
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    head: bytes


Step = bytes | float | threading.Event  # write these bytes / sleep / wait for the event


@dataclass
class Reply:
    steps: Sequence[Step] = ()
    close: bool = False  # close the connection after the steps (else read the next request)


Handler = Callable[[Seen], Reply]


class _Stopped(Exception):
    pass


class _Reader:
    """Buffered reads from one accepted socket that give up when the server stops."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.buffer = b""

    def _more(self) -> bool:
        deadline = time.monotonic() + PATIENCE
        while True:
            if self.stop.is_set() or time.monotonic() > deadline:
                raise _Stopped
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return False
            self.buffer += data
            return True

    def until(self, mark: bytes) -> bytes | None:
        while (end := self.buffer.find(mark)) < 0:
            if not self._more():
                return None
        found, self.buffer = self.buffer[:end], self.buffer[end + len(mark) :]
        return found

    def exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._more():
                return None
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def chunked_body(self) -> bytes | None:
        parts: list[bytes] = []
        while True:
            line = self.until(b"\r\n")
            if line is None:
                return None
            size = int(line.partition(b";")[0], 16)
            if size == 0:
                while (trailer := self.until(b"\r\n")) != b"":
                    if trailer is None:
                        return None
                return b"".join(parts)
            data = self.exactly(size)
            if data is None or self.exactly(2) != b"\r\n":
                return None
            parts.append(data)

    def request(self, connection: int) -> Seen | None:
        head = self.until(b"\r\n\r\n")
        if head is None:
            return None
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body: bytes | None = b""
        if "content-length" in headers:
            body = self.exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self.chunked_body()
        if body is None:
            return None
        return Seen(connection, method, target, headers, body, head)


class RawServer:
    """Accepts connections on 127.0.0.1 in a thread; each connection gets a thread that
    reads requests and writes what ``handler`` says. ``tls`` wraps every connection;
    ``greeting`` is written as soon as a connection is accepted, which is then closed."""

    def __init__(
        self,
        handler: Handler,
        tls: ssl.SSLContext | None = None,
        greeting: bytes | None = None,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.greeting = greeting
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(POLL)
        self.address: tuple[str, int] = self.listener.getsockname()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.address[1]}"
        self.seen: list[Seen] = []
        self.connections = 0
        self.closed_by_client: set[int] = set()
        self.closed_by_server: set[int] = set()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._start(self._accept_loop)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
            self._start(self._serve, sock, index)

    def _serve(self, sock: socket.socket, index: int) -> None:
        try:
            if self.tls is not None:
                sock.settimeout(PATIENCE)
                sock = self.tls.wrap_socket(sock, server_side=True)
            with sock:
                if self.greeting is not None:
                    sock.sendall(self.greeting)
                    return
                sock.settimeout(POLL)
                reader = _Reader(sock, self._stop)
                while True:
                    seen = reader.request(index)
                    if seen is None:
                        with self._lock:
                            self.closed_by_client.add(index)
                        return
                    with self._lock:
                        self.seen.append(seen)
                    reply = self.handler(seen)
                    self._play(sock, reply.steps)
                    if reply.close:
                        with self._lock:
                            self.closed_by_server.add(index)
                        return
        except (_Stopped, OSError):
            return
        except BaseException as exc:  # a handler's assertion: report it at teardown
            self.errors.append(exc)

    def _play(self, sock: socket.socket, steps: Sequence[Step]) -> None:
        for step in steps:
            if isinstance(step, bytes):
                sock.settimeout(PATIENCE)
                sock.sendall(step)
                sock.settimeout(POLL)
            elif isinstance(step, threading.Event):
                deadline = time.monotonic() + PATIENCE
                while not step.wait(POLL):
                    if self._stop.is_set() or time.monotonic() > deadline:
                        raise _Stopped
            else:
                time.sleep(step)

    def connections_of(self) -> list[int]:
        """The connection each request came on, in order."""
        with self._lock:
            return [seen.connection for seen in self.seen]

    def stop(self) -> bool:
        """Stop every thread; False if one would not stop."""
        self._stop.set()
        self.listener.close()
        for thread in list(self._threads):
            thread.join(PATIENCE)
        return not any(thread.is_alive() for thread in self._threads)


class Serve(Protocol):
    def __call__(
        self,
        handler: Handler,
        *,
        tls: ssl.SSLContext | None = None,
        greeting: bytes | None = None,
    ) -> RawServer: ...


@contextlib.contextmanager
def raw_servers() -> Iterator[Serve]:
    """Start raw servers; all are stopped on exit, and a handler's failure fails the test.
    The body of a ``serve`` fixture (the test modules define it, importing this)."""
    servers: list[RawServer] = []

    def start(
        handler: Handler, *, tls: ssl.SSLContext | None = None, greeting: bytes | None = None
    ) -> RawServer:
        server = RawServer(handler, tls=tls, greeting=greeting)
        servers.append(server)
        return server

    yield start
    stopped = [server.stop() for server in servers]
    assert all(stopped), "a server thread did not stop"
    for server in servers:
        assert not server.errors, server.errors


def wait_until(condition: Callable[[], bool], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- replies ----------------------------------------------------------------------------


def response(body: bytes = b"ok", headers: bytes = b"", status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), headers, body)


def ok(body: bytes = b"ok", headers: bytes = b"") -> Reply:
    return Reply([response(body, headers)])


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def open_body(seen: Seen) -> Reply:
    """A chunked body that stays open until the client goes."""
    return Reply([CHUNKED_HEAD + chunk(b"open")])


def held_or_free(seen: Seen) -> Reply:
    """``/held`` gets a body that never ends (its connection stays busy); others "free"."""
    return held_or_echo(seen) if seen.target == "/held" else ok(b"free")


def held_or_echo(seen: Seen) -> Reply:
    """``/held`` gets a body that never ends; others their own target as the body."""
    if seen.target == "/held":
        return Reply([CHUNKED_HEAD + chunk(b"held")])
    return ok(seen.target.encode())


# --- TLS --------------------------------------------------------------------------------


def self_signed_certificate(folder: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate and its key for 127.0.0.1, made in ``folder`` by the
    openssl command; None without one."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=30)
    except FileNotFoundError:
        return None
    return cert, key
