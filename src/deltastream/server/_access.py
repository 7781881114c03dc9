"""The access log: one line per request on the ``deltastream.server`` logger.

``POST /v1/chat/completions 200 153.2ms model=gpt-4o`` — method, path (no query
string), status, time until the response ended (for a stream, its last byte) and the
model the request named. Handlers put the model in ``scope["state"]["model"]`` once
they have parsed the body; headers (and so API keys) are never logged. A request that
ends without a response start (the client left first) is logged with status 499.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LOGGER_NAME", "AccessLog"]

LOGGER_NAME: Final = "deltastream.server"
_CLIENT_GONE: Final = 499

logger = logging.getLogger(LOGGER_NAME)


def _printable(text: str) -> str:
    """At most 200 characters, none of them a line break or another control."""
    return "".join(c if c.isprintable() else "?" for c in text[:200])


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        status = _CLIENT_GONE
        started = time.perf_counter()

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        except Exception:
            status = 500 if status == _CLIENT_GONE else status
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            model = state.get("model") if isinstance(state, dict) else None
            logger.info(
                "%s %s %d %.1fms model=%s",
                scope.get("method", "-"),
                scope.get("path", "-"),
                status,
                elapsed_ms,
                _printable(model) if isinstance(model, str) and model else "-",
            )
