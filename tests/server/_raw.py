"""HTTP/1.1 by hand, to see exactly what went over the socket."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit


def raw_post(
    url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[bytes, bytes, OSError | None]:
    """POST with ``Connection: close``; read to EOF or a socket error.

    Returns the response head, the raw (still chunked) body and the error, if any.
    """
    parts = urlsplit(url)
    content = json.dumps(body).encode()
    lines = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(content)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + content
    received = bytearray()
    error: OSError | None = None
    assert parts.hostname is not None
    assert parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request)
        try:
            while data := sock.recv(65536):
                received += data
        except OSError as exc:
            error = exc
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    return head, rest, error


def dechunk(body: bytes) -> tuple[list[bytes], bool]:
    """The chunks of a chunked body, and whether it ended with the last-chunk marker."""
    chunks: list[bytes] = []
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        if size == 0:
            return chunks, rest == b"\r\n"
        chunks.append(rest[:size])
        body = rest[size + 2 :]
    return chunks, False
