"""The direct lane: a request handed straight to deltastream's transport when the
httpx2 client around it would add nothing on the way.

``httpx2.Client.build_request`` and ``send`` merge the client's headers, cookies and
query parameters into every request, then pass it through auth, redirect, event-hook,
cookie and logging layers. For the common client (ours, unconfigured) none of them
changes a byte, and together they cost more than the transport's whole exchange
(docs/benchmarks.md, "one request"). So :func:`lane` checks, per request and cheaply,
that the client would add nothing; then :func:`build` makes the request httpx2 would
make (its merged header list is computed once by httpx2 itself, per header set, and
reused) and :func:`finish` does to the response what httpx2's ``send`` would.

Anything else (auth, event hooks, stored cookies, client-level query parameters,
``httpx2`` logging at INFO, another transport, a subclass that overrides the sending
methods, a closed client) goes the long way through httpx2, unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx2
from httpx2._client import BoundAsyncStream, BoundSyncStream, ClientState

from .._memo import Memo
from ..transport import AsyncHTTP11Transport, HTTP11Transport
from ..transport._common import PREPARED_HEAD, PreparedHead, header, origin_of, outgoing

__all__ = ["adirect_send", "build", "direct_send", "lane"]

_httpx_log = logging.getLogger("httpx2")
# The methods a client subclass could override to change what is sent.
_SENDING = ("send", "_send_handling_auth", "_send_handling_redirects", "_send_single_request")
_plain_types: dict[type[Any], bool] = {}
# (URL, method, client headers, request headers) -> what those requests share (see
# _Template). A client has a handful of each; the bound is for the odd one.
_merged: Memo[tuple[Any, ...], _Template] = Memo(limit=256)
_CONTENT_LENGTH = "Content-Length"
_Request = httpx2.Request
_REDIRECTS = frozenset({301, 302, 303, 307, 308})  # what has_redirect_location accepts


def _plain_type(cls: type[Any]) -> bool:
    known = _plain_types.get(cls)
    if known is None:
        base = httpx2.Client if issubclass(cls, httpx2.Client) else httpx2.AsyncClient
        known = all(getattr(cls, name) is getattr(base, name) for name in _SENDING)
        _plain_types[cls] = known
    return known


def lane(
    http: httpx2.Client | httpx2.AsyncClient, url: httpx2.URL, params: object
) -> HTTP11Transport | AsyncHTTP11Transport | None:
    """Our transport, if ``http`` would add nothing to a request for ``url``; else None."""
    if (
        params
        or http._auth is not None
        or http._state is ClientState.CLOSED
        or http._params
        or any(http._event_hooks.values())
        or http._cookies.jar._cookies  # type: ignore[attr-defined]  # len() walks it all
        or url.userinfo
        or _httpx_log.isEnabledFor(logging.INFO)
        or not _plain_type(type(http))
    ):
        return None
    transport = http._transport_for_url(url)
    if isinstance(transport, HTTP11Transport | AsyncHTTP11Transport):
        return transport
    return None


def build(
    http: httpx2.Client | httpx2.AsyncClient,
    method: str,
    url: httpx2.URL,
    headers: Mapping[str, str],
    content: bytes,
    timeout: httpx2.Timeout,
    extensions: dict[str, Any],
) -> httpx2.Request:
    """The request ``http.build_request`` would make with ``content=content``."""
    # The URL by identity (``_http`` keeps one object per URL string): its entry holds
    # it, so the id cannot pass to another URL while the entry lives.
    key = (id(url), method, tuple(http._headers._list), tuple(headers.items()))
    merged = _merged.get(key)
    if merged is None:
        merged = _merged.keep(key, _Template(http, method, url, headers))
    extensions["timeout"] = timeout.as_dict()
    # What httpx2.Request(method, url, headers=sent, stream=ByteStream(content),
    # extensions=extensions) sets, without its checks and copies: every part is
    # known good (tests/test_direct_lane.py holds the two to the same attributes).
    request = _Request.__new__(_Request)
    request.method = method
    request.url = url
    request.headers = _SentHeaders.of(merged.header_list, merged.encoding, len(content))
    request.extensions = extensions
    request.stream = httpx2.ByteStream(content)
    request._content = content
    if merged.prepared is not None:
        setattr(request, PREPARED_HEAD, merged.prepared)
    return request


class _SentHeaders(httpx2.Headers):
    """A request's headers: its template's list and then Content-Length, made one list
    when first read. The transport sends the prepared head, so most requests' never
    are; a stream held open then holds no copy of its template's list."""

    __slots__ = ("_length", "_made", "_template")
    _length: int
    _made: list[tuple[bytes, bytes, bytes]] | None
    _template: list[tuple[bytes, bytes, bytes]]

    @classmethod
    def of(
        cls, template: list[tuple[bytes, bytes, bytes]], encoding: str | None, length: int
    ) -> _SentHeaders:
        headers = cls.__new__(cls)
        headers._template = template
        headers._length = length
        headers._made = None
        headers._encoding = encoding
        return headers

    @property
    def _list(self) -> list[tuple[bytes, bytes, bytes]]:
        made = self._made
        if made is None:
            length = b"%d" % self._length
            made = self._made = [*self._template, (b"Content-Length", b"content-length", length)]
        return made

    @_list.setter
    def _list(self, value: list[tuple[bytes, bytes, bytes]]) -> None:
        self._made = value


class _Template:
    """What every request with one key shares: httpx2's merged header list (without
    Content-Length), and the head those headers encode to, up to Content-Length."""

    __slots__ = ("encoding", "header_list", "prepared", "url")

    def __init__(
        self,
        http: httpx2.Client | httpx2.AsyncClient,
        method: str,
        url: httpx2.URL,
        headers: Mapping[str, str],
    ) -> None:
        model = http.build_request(method, url, headers=headers, content=b"")
        del model.headers[_CONTENT_LENGTH]
        self.url = url  # held: the key has its id
        self.header_list = model.headers._list
        self.encoding = model.headers.encoding
        self.prepared: PreparedHead | None = None
        # Else the transport encodes each request's head (and raises) as for any request.
        with contextlib.suppress(httpx2.LocalProtocolError, httpx2.UnsupportedProtocol):
            method_bytes, head, chunked, asks_close = outgoing(model, None)
            if not chunked:
                # The head without its blank line; each request adds Content-Length.
                origin = origin_of(url)
                self.prepared = PreparedHead(method_bytes, head[:-2], asks_close, origin)


def _finish(
    http: httpx2.Client | httpx2.AsyncClient, request: httpx2.Request, response: httpx2.Response
) -> bool:
    """What httpx2's ``send`` does to a response; True when it is a redirect to follow
    (then ``response.next_request`` is the request to follow it with)."""
    response.request = request
    response.default_encoding = http._default_encoding
    if header(response.headers, b"set-cookie") is not None:
        http._cookies.extract_cookies(response)
    # httpx2's own test looks its codes up through an enum metaclass: first the cheap one.
    if response.status_code not in _REDIRECTS or not response.has_redirect_location:
        return False
    # Rare: the rest is httpx2's own redirect loop, from where its send would be.
    if http.follow_redirects:
        response.next_request = http._build_redirect_request(request, response)
        return True
    with contextlib.suppress(httpx2.RemoteProtocolError):
        response.next_request = http._build_redirect_request(request, response)
    return False


def direct_send(
    http: httpx2.Client, transport: HTTP11Transport, request: httpx2.Request
) -> httpx2.Response:
    """``http.send(request, stream=True)``, on a client :func:`lane` chose."""
    http._state = ClientState.OPENED
    start = time.perf_counter()
    try:
        response = transport.handle_request(request)
    except httpx2.RequestError as exc:
        exc.request = request
        raise
    response.stream = BoundSyncStream(response.stream, start=start)  # type: ignore[arg-type]
    try:
        if not _finish(http, request, response):
            return response
        response.read()
    except BaseException:
        response.close()
        raise
    follow, response.next_request = response.next_request, None
    assert follow is not None
    return http._send_handling_redirects(follow, follow_redirects=True, history=[response])


async def adirect_send(
    http: httpx2.AsyncClient, transport: AsyncHTTP11Transport, request: httpx2.Request
) -> httpx2.Response:
    """The async twin of :func:`direct_send`."""
    http._state = ClientState.OPENED
    start = time.perf_counter()
    try:
        response = await transport.handle_async_request(request)
    except httpx2.RequestError as exc:
        exc.request = request
        raise
    response.stream = BoundAsyncStream(response.stream, start=start)  # type: ignore[arg-type]
    try:
        if not _finish(http, request, response):
            return response
        await response.aread()
    except BaseException:
        await response.aclose()
        raise
    follow, response.next_request = response.next_request, None
    assert follow is not None
    return await http._send_handling_redirects(follow, follow_redirects=True, history=[response])
