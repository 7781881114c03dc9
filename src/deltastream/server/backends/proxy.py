"""The proxy backend: requests forwarded to an upstream OpenAI-compatible server.

``POST`` (and ``GET``) ``/v1/...`` go to the same path under the upstream base URL with
the request body unchanged. An event stream comes back as it arrives, cut into event
blocks so the usual faults apply at the proxy; anything else (a JSON completion, a
4xx/5xx error) is passed through with its status. The upstream sees the request's
``Authorization`` header, or ``Bearer <upstream_api_key>`` when one is configured.

With a record folder, every complete streamed body is written byte for byte to
``<folder>/<timestamp>-<model>.sse``: the body only, never a header or a key. The replay
backend serves such files, also by the bare model name (the newest recording wins).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx2
from starlette.requests import Request
from starlette.responses import Response

from ...engine._http import is_event_stream as names_event_stream
from .._body import BodyItem, Cut, split_blocks
from .._errors import APIError
from .replay import MAX_FILE_BYTES, recording_suffix

__all__ = ["Upstream"]

_FORWARDED_REQUEST_HEADERS: Final = (
    "accept",
    "content-type",
    "idempotency-key",
    "openai-beta",
    "openai-organization",
    "openai-project",
)
_FORWARDED_RESPONSE_HEADERS: Final = (
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
)
#: A partial event larger than this is passed on without waiting for its end.
_MAX_PENDING: Final = 1024 * 1024
_TIMEOUT: Final = httpx2.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)


def is_event_stream(response: httpx2.Response) -> bool:
    return names_event_stream(response.headers.get("content-type"))


class _Blocks:
    """Cuts bytes that arrive in arbitrary pieces into whole event blocks."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        data = self.pending + data
        # A final CR may be the first half of a CRLF: keep it until the next piece.
        held = b"\r" if data.endswith(b"\r") else b""
        blocks = list(split_blocks(data[: len(data) - len(held)] + b"\x00"))
        self.pending = blocks.pop()[:-1] + held
        if len(self.pending) > _MAX_PENDING:
            blocks.append(self.pending)
            self.pending = b""
        return blocks

    def flush(self) -> list[bytes]:
        rest, self.pending = self.pending, b""
        return [rest] if rest else []


class Upstream:
    def __init__(
        self, base_url: str, *, api_key: str | None = None, record_dir: str | Path | None = None
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.record_dir = Path(record_dir) if record_dir is not None else None
        if self.record_dir is not None and not self.record_dir.is_dir():
            raise ValueError(f"record folder {str(record_dir)!r} is not a directory")
        self._client: httpx2.AsyncClient | None = None

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {
            name: request.headers[name]
            for name in _FORWARDED_REQUEST_HEADERS
            if name in request.headers
        }
        headers["accept-encoding"] = "identity"
        if self.api_key is not None:
            headers["authorization"] = f"Bearer {self.api_key}"
        elif "authorization" in request.headers:
            headers["authorization"] = request.headers["authorization"]
        return headers

    async def send(self, request: Request, body: bytes) -> httpx2.Response:
        """The upstream's response to ``request``, its body not read yet."""
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=_TIMEOUT)
        path = request.url.path.removeprefix("/v1")
        url = self.base_url + path + (f"?{request.url.query}" if request.url.query else "")
        outgoing = self._client.build_request(
            request.method, url, content=body, headers=self._headers(request)
        )
        try:
            return await self._client.send(outgoing, stream=True)
        except httpx2.TransportError as exc:
            raise APIError(
                502,
                f"The upstream server {self.base_url} could not be reached: "
                f"{type(exc).__name__}: {exc}",
                code="upstream_unreachable",
            ) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @staticmethod
    async def passthrough(response: httpx2.Response) -> Response:
        """The upstream's whole (non-stream) response, with its status."""
        try:
            content = await response.aread()
        except httpx2.TransportError as exc:
            raise APIError(502, f"The upstream response broke off: {exc}") from None
        finally:
            await response.aclose()
        headers = {
            name: response.headers[name]
            for name in _FORWARDED_RESPONSE_HEADERS
            if name in response.headers
        }
        return Response(content, status_code=response.status_code, headers=headers)

    async def relay(self, response: httpx2.Response, model: str) -> AsyncIterator[BodyItem]:
        """The upstream event stream as event blocks; recorded once it ends cleanly."""
        blocks = _Blocks()
        recording: bytearray | None = bytearray() if self.record_dir is not None else None
        try:
            async for data in response.aiter_bytes():
                if recording is not None:
                    recording += data
                    if len(recording) > MAX_FILE_BYTES:
                        recording = None
                for block in blocks.feed(data):
                    yield block
        except httpx2.TransportError:
            for block in blocks.flush():
                yield block
            yield Cut()
            return
        finally:
            await response.aclose()
        for block in blocks.flush():
            yield block
        if recording is not None:
            await asyncio.to_thread(self._record, bytes(recording), model)

    def _record(self, body: bytes, model: str) -> Path:
        assert self.record_dir is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = self.record_dir / f"{stamp}{recording_suffix(model)}"
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(body)
        os.replace(partial, path)
        return path
