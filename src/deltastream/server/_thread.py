"""Running the app under uvicorn: in a background thread (tests) or in the foreground.

We bind the listening socket ourselves and hand it to uvicorn, so the port is known
(``port=0`` picks a free one) and accepting connections before uvicorn's loop starts;
connections that arrive early wait in the backlog.

Shutting down (Ctrl+C, or leaving ``run_in_thread``) first ends every open stream
cleanly (:meth:`ServerStats.stop_streams`: an in-band error event, then the end of the
body), then lets uvicorn finish the other requests within its grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from ._access import LOGGER_NAME
from ._app import create_app
from ._connections import ServerStats, tracking_protocol

__all__ = ["base_url", "run_in_thread", "serve"]

_POLL_SECONDS: Final = 0.005


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT/v1``, with brackets around an IPv6 host."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Say IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto
    # is TCP, and without it every small response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _stats_of(app: ASGIApp) -> ServerStats | None:
    stats = getattr(getattr(app, "state", None), "deltastream_stats", None)
    return stats if isinstance(stats, ServerStats) else None


class _Server(uvicorn.Server):
    """uvicorn's server, ending open streams before its graceful shutdown waits."""

    def __init__(self, config: uvicorn.Config, stats: ServerStats | None) -> None:
        super().__init__(config)
        self.stats = stats

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.stats is not None:
            self.stats.stop_streams()
        await super().shutdown(sockets=sockets)


def _config(app: ASGIApp, *, graceful_seconds: int) -> uvicorn.Config:
    stats = _stats_of(app)
    protocol = tracking_protocol(stats) if stats is not None else "h11"
    return uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="auto",
        # Forwarded headers would change scope["client"], which keys the open connections.
        proxy_headers=False,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=graceful_seconds,
    )


@contextlib.contextmanager
def run_in_thread(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
) -> Iterator[str]:
    """Serve ``app`` on a real socket from a background thread; yield its base URL.

    On exit, open streams end (with an in-band error event) and the server stops; this
    takes at most about ``2 * shutdown_timeout`` seconds even if requests are still
    running.
    """
    sock = _listen(host, port)
    stats = _stats_of(app)
    server = _Server(_config(app, graceful_seconds=1), stats)
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        with asyncio.Runner() as runner:
            loops.append(runner.get_loop())
            runner.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name="deltastream-server", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("deltastream server thread exited during startup")
            if time.monotonic() > deadline:
                raise RuntimeError(f"deltastream server did not start in {startup_timeout} s")
            time.sleep(_POLL_SECONDS)
        yield base_url(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        if thread.ident is not None:
            thread.join(shutdown_timeout)
            if thread.is_alive():
                if stats is not None and loops:
                    # Whatever still holds a connection must not hold up the exit.
                    with contextlib.suppress(RuntimeError):
                        loops[0].call_soon_threadsafe(stats.close_all)
                server.force_exit = True
                thread.join(shutdown_timeout)
        sock.close()


def _log_requests_to_stderr() -> None:
    """Show the access log (INFO on ``deltastream.server``) unless logging is set up."""
    logger = logging.getLogger(LOGGER_NAME)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "scripted",
    *,
    replay_dir: str | Path | None = None,
    faults: str | None = None,
    api_key: str | None = None,
    tokens_per_second: float | None = None,
    first_token_ms: float | None = None,
    model_path: str | Path | None = None,
    max_concurrent: int = 1,
    queue_limit: int = 8,
    replay_pace: float | str | None = None,
    upstream: str | None = None,
    upstream_api_key: str | None = None,
    record_dir: str | Path | None = None,
    access_log: bool = True,
    legacy_function_call: bool = True,
    default_max_tokens: int | None = None,
) -> None:
    """Serve until interrupted (Ctrl+C), announcing the base URL on stderr.

    With ``access_log``, one line per request goes to stderr (see :mod:`._access`).
    Raises ``ValueError`` for bad options and ``OSError`` if the address is taken.
    """
    app = create_app(
        backend,
        replay_dir=replay_dir,
        default_faults=faults,
        api_key=api_key,
        tokens_per_second=tokens_per_second,
        first_token_ms=first_token_ms,
        model_path=model_path,
        max_concurrent=max_concurrent,
        queue_limit=queue_limit,
        replay_pace=replay_pace,
        upstream=upstream,
        upstream_api_key=upstream_api_key,
        record_dir=record_dir,
        legacy_function_call=legacy_function_call,
        default_max_tokens=default_max_tokens,
    )
    if access_log:
        _log_requests_to_stderr()
    sock = _listen(host, port)
    try:
        url = base_url(host, sock.getsockname()[1])
        print(f"deltastream serve: listening on {url}", file=sys.stderr, flush=True)
        _Server(_config(app, graceful_seconds=3), _stats_of(app)).run(sockets=[sock])
    finally:
        sock.close()
