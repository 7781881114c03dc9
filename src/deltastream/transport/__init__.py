"""deltastream's own HTTP/1.1 transports for httpx2: the framing is a sans-I/O core
(``_h1``), the connection pool's bookkeeping is shared (``_pool``), and two thin shells
do the I/O: blocking sockets (``_sync``) and an asyncio protocol (``_async``). Opening
connections (``_dial``), TLS (``_tls``) and proxies (``_proxy``) have a module each;
``sync_http_client`` / ``async_http_client`` (``_clients``) build httpx2 clients that
use these transports and honour proxy settings as httpx2's own would."""

from ._async import AsyncHTTP11Transport, AsyncResponseBody
from ._clients import async_http_client, sync_http_client
from ._common import BODY_EXTENSION, RESEND_STALE_EXTENSION, WAITING_EXTENSION, shutdown_socket
from ._sync import HTTP11Transport

__all__ = [
    "BODY_EXTENSION",
    "RESEND_STALE_EXTENSION",
    "WAITING_EXTENSION",
    "AsyncHTTP11Transport",
    "AsyncResponseBody",
    "HTTP11Transport",
    "async_http_client",
    "shutdown_socket",
    "sync_http_client",
]
