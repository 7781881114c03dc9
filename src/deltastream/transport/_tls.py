"""The client TLS context, built when an https origin is first used.

Building one loads the CA bundle (about 20 ms), which a client that only ever talks to
``http://localhost`` should not pay, nor a process that makes many clients pay more
than once. So a transport holds a :class:`TLSConfig` (what ``verify``, ``cert`` and
``trust_env`` asked for) and asks it for the context on its first https connection;
contexts made from the same settings (and the same ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
when ``trust_env`` reads them) are one object for the whole process. A context the
caller built (``verify=<SSLContext>``) is used as it is.

Every context offers ALPN ``http/1.1``, as httpx2's transport does: some servers and
load balancers choose the protocol by it.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Hashable
from typing import Any

import httpx2

__all__ = ["ALPN", "TLSConfig"]

ALPN = ["http/1.1"]

_shared: dict[Hashable, ssl.SSLContext] = {}
_lock = threading.Lock()


class TLSConfig:
    """``verify``, ``cert`` and ``trust_env`` as httpx2 takes them; :meth:`context`
    builds (or finds) the context on first use."""

    __slots__ = ("_cert", "_context", "_trust_env", "_verify")

    def __init__(
        self, verify: ssl.SSLContext | str | bool = True, cert: Any = None, trust_env: bool = True
    ) -> None:
        self._verify = verify
        self._cert = cert
        self._trust_env = trust_env
        self._context: ssl.SSLContext | None = None

    @property
    def built(self) -> bool:
        return self._context is not None

    def context(self) -> ssl.SSLContext:
        context = self._context
        if context is None:
            context = self._context = _context_for(self._verify, self._cert, self._trust_env)
        return context


def _context_for(verify: ssl.SSLContext | str | bool, cert: Any, trust_env: bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        context = httpx2.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        context.set_alpn_protocols(ALPN)
        return context
    key = _key(verify, cert, trust_env)
    with _lock:
        shared = _shared.get(key) if key is not None else None
        if shared is not None:
            return shared
        context = httpx2.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
        context.set_alpn_protocols(ALPN)
        if key is not None:
            _shared[key] = context
        return context


def _key(verify: str | bool, cert: Any, trust_env: bool) -> Hashable | None:
    """What the context depends on, or None when that cannot be a dictionary key."""
    env = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else ()
    key = (verify, cert, trust_env, env)
    try:
        hash(key)
    except TypeError:
        return None
    return key
