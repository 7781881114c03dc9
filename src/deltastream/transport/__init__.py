"""deltastream's own HTTP/1.1 transports for httpx2: the framing is a sans-I/O core
(``_h1``), the connection pool's bookkeeping is shared (``_pool``), and two thin shells
do the I/O: blocking sockets (``_sync``) and an asyncio protocol (``_async``)."""

from ._async import AsyncHTTP11Transport
from ._sync import BODY_EXTENSION, HTTP11Transport, shutdown_socket

__all__ = ["BODY_EXTENSION", "AsyncHTTP11Transport", "HTTP11Transport", "shutdown_socket"]
