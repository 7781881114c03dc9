"""A small HTTP proxy on raw sockets, for the proxy tests.

It forwards a request in absolute form (``GET http://host:port/path``) to its origin,
opens a tunnel for ``CONNECT host:port``, and records the first request of each
connection (the rest of a connection is piped both ways unread). ``credentials``
makes it answer 407 to requests without that ``Proxy-Authorization``; ``refuse``
makes it answer every CONNECT with that status line."""

from __future__ import annotations

import base64
import selectors
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ProxySeen", "ProxyServer"]

_POLL = 0.05
_PATIENCE = 5.0
_EMPTY = b"Content-Length: 0\r\n\r\n"


@dataclass
class ProxySeen:
    method: str
    target: str
    headers: dict[str, str]  # names in lower case


class ProxyServer:
    def __init__(self, credentials: tuple[str, str] | None = None, refuse: bytes = b"") -> None:
        self.expected = None
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self.expected = f"Basic {token}"
        self.refuse = refuse
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(_POLL)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[ProxySeen] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            sock.settimeout(_PATIENCE)
            buffer = b""
            try:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
            except OSError:
                return
            head, _, rest = buffer.partition(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _version = request_line.split(" ")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.seen.append(ProxySeen(method, target, headers))
            if self.expected is not None and headers.get("proxy-authorization") != self.expected:
                sock.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
                )
                return
            if method == "CONNECT":
                if self.refuse:
                    sock.sendall(b"HTTP/1.1 " + self.refuse + b"\r\n" + _EMPTY)
                    return
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host.strip("[]"), int(port)), _PATIENCE)
                sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                parts = urlsplit(target)
                assert parts.hostname is not None
                address = (parts.hostname, parts.port or 80)
                upstream = socket.create_connection(address, _PATIENCE)
                upstream.sendall(head + b"\r\n\r\n" + rest)
            with upstream:
                self._pipe(sock, upstream)

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(a, selectors.EVENT_READ, b)
            selector.register(b, selectors.EVENT_READ, a)
            while not self._stop.is_set():
                for key, _ in selector.select(_POLL):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return

    def stop(self) -> bool:
        self._stop.set()
        self.listener.close()
        for thread in list(self._threads):
            thread.join(_PATIENCE)
        return not any(thread.is_alive() for thread in self._threads)
