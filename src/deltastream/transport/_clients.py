"""httpx2 clients on deltastream's transports that still honour proxy settings.

``httpx2.Client(transport=...)`` reads no proxy settings: httpx2 mounts proxies from
``proxy=`` and from ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``
only around its own default transport. These factories build the same mounts httpx2
would (the same patterns from the same rules, its own function reads the environment)
and put deltastream's transport under them:

- a direct origin (no proxy, or excluded by ``NO_PROXY``): deltastream's transport;
- through an ``http://`` proxy: deltastream's transport too, forwarding http:// origins
  and tunnelling https:// ones with CONNECT (``_proxy``);
- through an ``https://`` or SOCKS proxy: httpx2's own transport, as httpx2 would.

``mounts=`` are laid over them, as with httpx2. Everything else is passed to
``httpx2.Client`` as it is.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx2
from httpx2._utils import get_environment_proxies  # what httpx2.Client(trust_env=True) reads

from ._async import AsyncHTTP11Transport
from ._common import default_limits
from ._sync import HTTP11Transport

__all__ = ["async_http_client", "sync_http_client"]

T = TypeVar("T")
SocketOptions = Iterable[tuple[int, int, int]]
_NOT_HERE = ("transport", "http1", "http2")


def sync_http_client(
    *,
    verify: ssl.SSLContext | str | bool = True,
    cert: Any = None,
    trust_env: bool = True,
    proxy: httpx2.Proxy | httpx2.URL | str | None = None,
    mounts: Mapping[str, httpx2.BaseTransport | None] | None = None,
    limits: httpx2.Limits | None = None,
    socket_options: SocketOptions | None = None,
    client_class: type[httpx2.Client] = httpx2.Client,
    **options: Any,
) -> httpx2.Client:
    """An ``httpx2.Client`` on :class:`HTTP11Transport`, with proxies as httpx2's own
    would use them. ``options``: any other ``httpx2.Client`` keyword (``timeout``,
    ``headers``, ``follow_redirects``, ``event_hooks``, ``auth``, ...). ``limits``
    defaults to deltastream's (as many connections as the process may open), for the
    proxies' transports as well. ``client_class``: a subclass of ``httpx2.Client`` to
    make instead (openai's ``DefaultHttpxClient``, say), given the same arguments."""
    _refuse(options)
    limits = limits or default_limits()

    def own(route: httpx2.Proxy | None) -> httpx2.BaseTransport:
        return HTTP11Transport(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            limits=limits,
            socket_options=socket_options,
            proxy=route,
        )

    def theirs(route: httpx2.Proxy) -> httpx2.BaseTransport:
        return httpx2.HTTPTransport(
            verify=verify, cert=cert, trust_env=trust_env, limits=limits, proxy=route
        )

    return client_class(
        **options,
        trust_env=trust_env,
        transport=own(None),
        mounts=_mounts(proxy, mounts, trust_env, own, theirs),
    )


def async_http_client(
    *,
    verify: ssl.SSLContext | str | bool = True,
    cert: Any = None,
    trust_env: bool = True,
    proxy: httpx2.Proxy | httpx2.URL | str | None = None,
    mounts: Mapping[str, httpx2.AsyncBaseTransport | None] | None = None,
    limits: httpx2.Limits | None = None,
    socket_options: SocketOptions | None = None,
    client_class: type[httpx2.AsyncClient] = httpx2.AsyncClient,
    **options: Any,
) -> httpx2.AsyncClient:
    """The ``httpx2.AsyncClient`` twin of :func:`sync_http_client`, on
    :class:`AsyncHTTP11Transport`."""
    _refuse(options)
    limits = limits or default_limits()

    def own(route: httpx2.Proxy | None) -> httpx2.AsyncBaseTransport:
        return AsyncHTTP11Transport(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            limits=limits,
            socket_options=socket_options,
            proxy=route,
        )

    def theirs(route: httpx2.Proxy) -> httpx2.AsyncBaseTransport:
        return httpx2.AsyncHTTPTransport(
            verify=verify, cert=cert, trust_env=trust_env, limits=limits, proxy=route
        )

    return client_class(
        **options,
        trust_env=trust_env,
        transport=own(None),
        mounts=_mounts(proxy, mounts, trust_env, own, theirs),
    )


def _refuse(options: Mapping[str, Any]) -> None:
    for name in _NOT_HERE:
        if name in options:
            raise TypeError(
                f"{name}= is not for a client on deltastream's HTTP/1.1 transport: "
                "build an httpx2 client yourself for that"
            )


def _mounts(
    proxy: httpx2.Proxy | httpx2.URL | str | None,
    mounts: Mapping[str, T | None] | None,
    trust_env: bool,
    own: Callable[[httpx2.Proxy | None], T],
    theirs: Callable[[httpx2.Proxy], T],
) -> dict[str, T | None]:
    """httpx2's proxy mounts (``None``: the client's default transport, ours), with a
    transport for each proxy: ours for http:// ones, httpx2's for the rest."""
    routes: dict[str, httpx2.Proxy | None]
    if proxy is not None:
        routes = {"all://": proxy if isinstance(proxy, httpx2.Proxy) else httpx2.Proxy(proxy)}
    elif trust_env:
        routes = {
            pattern: None if url is None else httpx2.Proxy(url)
            for pattern, url in get_environment_proxies().items()
        }
    else:
        routes = {}
    built: dict[str, T | None] = {}
    for pattern, route in routes.items():
        if route is None:
            built[pattern] = None
        elif route.url.scheme == "http" and route.ssl_context is None:
            built[pattern] = own(route)
        else:
            built[pattern] = theirs(route)
    built.update(mounts or {})
    return built
