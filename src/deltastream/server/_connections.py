"""Connection and stream counters, and the hook that feeds them.

ASGI never tells an app about TCP connections, only about requests. So the runner
(:mod:`._thread`) gives uvicorn a subclass of its h11 protocol (one protocol object per
accepted connection) that reports ``connection_made`` / ``connection_lost`` to a
:class:`ServerStats`. The app finds the same object in ``app.state`` and serves it at
``GET /_deltastream/stats``; the transports it keeps are what lets ``drop-after`` and
``reset-after`` break the very connection a request arrived on (found by the peer
address in ``scope["client"]``). Without the hook (say, under plain ``uvicorn``) the
counters stay at zero, ``tracking`` is false and a cut falls back to raising inside the
response, which uvicorn answers by closing the connection.

Everything here runs on the server's event loop thread.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["Peer", "ServerStats", "tracking_protocol"]

Peer = tuple[str, int]


class ServerStats:
    def __init__(self) -> None:
        self.tracking = False
        self.accepted = 0
        self.requests = 0
        self.streams = 0
        self.active_streams = 0
        self._open: dict[Peer, asyncio.Transport] = {}
        self._stoppers: set[asyncio.Future[None]] = set()

    def connection_made(self, peer: Peer | None, transport: asyncio.Transport) -> None:
        self.tracking = True
        self.accepted += 1
        if peer is not None:
            self._open[peer] = transport

    def connection_lost(self, peer: Peer | None) -> None:
        if peer is not None:
            self._open.pop(peer, None)

    def transport_for(self, peer: object) -> asyncio.Transport | None:
        if not isinstance(peer, tuple | list) or len(peer) != 2:
            return None
        return self._open.get((str(peer[0]), int(peer[1])))

    def close_all(self) -> None:
        """Close every open connection (used when a test server shuts down)."""
        for transport in list(self._open.values()):
            transport.close()

    def add_stopper(self, stop: asyncio.Future[None]) -> None:
        """``stop`` is resolved by :meth:`stop_streams` (one per open stream)."""
        self._stoppers.add(stop)

    def remove_stopper(self, stop: asyncio.Future[None]) -> None:
        self._stoppers.discard(stop)

    def stop_streams(self) -> None:
        """Ask every open stream to end now (the server is shutting down)."""
        for stop in list(self._stoppers):
            if not stop.done():
                stop.set_result(None)

    def snapshot(self) -> dict[str, object]:
        return {
            "tracking": self.tracking,
            "open_connections": len(self._open),
            "total_connections": self.accepted,
            "total_requests": self.requests,
            "active_streams": self.active_streams,
            "total_streams": self.streams,
        }


def tracking_protocol(stats: ServerStats) -> type[H11Protocol]:
    """uvicorn's h11 protocol class, reporting each connection to ``stats``."""

    class TrackingH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            stats.connection_made(self.client, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            stats.connection_lost(self.client)
            super().connection_lost(exc)

    return TrackingH11Protocol
