"""Requests through an ``http://`` proxy, sans I/O, the way httpx2's transport sends them.

- An ``http://`` origin is forwarded: the request goes to the proxy with the whole URL
  as its target (absolute form, RFC 9112 3.2.2) and the proxy's headers added.
- An ``https://`` origin is tunnelled: ``CONNECT host:port`` to the proxy; a 2xx answer
  makes the connection a byte pipe to the origin (RFC 9110 9.3.6), over which TLS and
  then the request go as on a direct connection. Any other answer is an
  ``httpx2.ProxyError`` naming its status.

The proxy's headers are ``Proxy-Authorization`` (from credentials in the proxy URL or
``httpx2.Proxy(auth=...)``) and ``httpx2.Proxy(headers=...)``. Proxies reached over TLS
(``https://``) or SOCKS are left to httpx2's own transport (see ``_clients``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import httpx2

from ._h1 import ResponseHead, request_head
from ._pool import Origin

__all__ = ["ProxyRoute", "TunnelReply", "merge_headers"]

Headers = list[tuple[bytes, bytes]]


def merge_headers(defaults: Sequence[tuple[bytes, bytes]], overrides: Headers) -> Headers:
    """``overrides``, after those of ``defaults`` whose names they do not have."""
    names = {name.lower() for name, _ in overrides}
    return [(n, v) for n, v in defaults if n.lower() not in names] + overrides


class ProxyRoute:
    """Where an ``http://`` proxy is, and what it is told."""

    __slots__ = ("headers", "host", "port", "url")

    def __init__(self, proxy: httpx2.Proxy | httpx2.URL | str) -> None:
        if not isinstance(proxy, httpx2.Proxy):
            proxy = httpx2.Proxy(url=proxy)
        if proxy.url.scheme != "http" or proxy.ssl_context is not None:
            raise ValueError(
                f"deltastream's transport speaks to http:// proxies only, not {proxy.url!r}: "
                "use httpx2.HTTPTransport(proxy=...) (sync_http_client does so by itself)"
            )
        self.url = proxy.url
        self.host = proxy.url.host
        self.port = proxy.url.port or 80
        headers: Headers = []
        if proxy.raw_auth is not None:
            credentials = base64.b64encode(b":".join(proxy.raw_auth))
            headers.append((b"Proxy-Authorization", b"Basic " + credentials))
        self.headers = merge_headers(headers, list(proxy.headers.raw))

    def forward(self, url: httpx2.URL, headers: Headers) -> tuple[bytes, Headers]:
        """The target and headers of a request forwarded to ``url`` (an http:// one)."""
        target = url.raw_scheme + b"://" + url.netloc + url.raw_path
        return target, merge_headers(self.headers, headers)

    def connect_head(self, origin: Origin) -> bytes:
        """The CONNECT request that opens a tunnel to ``origin``."""
        _scheme, host, port = origin
        authority = (b"[%b]:%d" if b":" in host else b"%b:%d") % (host, port)
        headers = merge_headers([(b"Host", authority), (b"Accept", b"*/*")], self.headers)
        return request_head(b"CONNECT", authority, headers)


class TunnelReply:
    """The proxy's answer to CONNECT: :meth:`feed` it what arrives until it returns
    True (the tunnel is open); it raises if the proxy refused."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> bool:
        self._buffer += data
        while True:
            parsed = ResponseHead.parse(self._buffer)
            if parsed is None:
                return False
            head, self._buffer = parsed
            if not 100 <= head.status < 200:
                break
        if not 200 <= head.status < 300:
            reason = head.reason.decode("ascii", "replace")
            raise httpx2.ProxyError(f"{head.status} {reason}".strip())
        if self._buffer:
            raise httpx2.RemoteProtocolError("The proxy sent data before the tunnel was used")
        return True
