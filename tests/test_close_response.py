"""close_response / aclose_response (engine/_http.py): how a stream closes its
response. A body from deltastream's transport is closed without httpx2's context
manager; any other response is closed by httpx2's own close. Either way the response
ends closed, its body's close runs once, and the connection is let go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from deltastream.engine._http import aclose_response, aiter_body, close_response, iter_body
from deltastream.transport import BODY_EXTENSION, async_http_client, sync_http_client

from ._helpers import chunk_json, sse_body
from ._raw_server import CHUNKED_HEAD, Reply, Seen, Serve, chunk, response

STREAM = response(
    sse_body(chunk_json("hi"), chunk_json(finish="stop")),
    b"Content-Type: text/event-stream\r\n",
)


def streams(seen: Seen) -> Reply:
    return Reply([STREAM])


def sent(http: httpx2.Client, url: str) -> httpx2.Response:
    """The answer to a request to ``url``, its body not read yet."""
    return http.send(http.build_request("POST", f"{url}/v1", content=b"{}"), stream=True)


def test_a_body_read_to_its_end_is_closed_and_its_connection_used_again(serve: Serve) -> None:
    server = serve(streams)
    with sync_http_client() as http:
        for _ in range(2):
            answer = sent(http, server.url)
            assert b"".join(iter_body(answer)).startswith(b"data: ")
            close_response(answer)
            assert answer.is_closed
            assert answer.elapsed.total_seconds() > 0  # httpx2's bound stream was closed
            close_response(answer)  # again: nothing more happens
    assert [seen.connection for seen in server.seen] == [0, 0]


def test_a_body_closed_unread_lets_its_connection_go(serve: Serve) -> None:
    server = serve(streams)
    with sync_http_client() as http:
        for _ in range(2):
            answer = sent(http, server.url)
            body = answer.extensions[BODY_EXTENSION]
            close_response(answer)
            assert answer.is_closed
            assert not body.holds_connection
    assert len(server.seen) == 2


class _Body(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    def __init__(self) -> None:
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b"data: x\n\n"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"data: x\n\n"

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


class _FailingBody(_Body):
    """A body whose close fails as a transport's may."""

    def close(self) -> None:
        super().close()
        raise httpx2.ReadError("the close failed")

    async def aclose(self) -> None:
        await super().aclose()
        raise httpx2.ReadError("the close failed")


def test_any_other_response_is_closed_by_httpx2() -> None:
    body = _Body()
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, stream=body))
    with httpx2.Client(transport=transport) as http:
        answer = http.send(http.build_request("GET", "http://example.test/"), stream=True)
        close_response(answer)
        close_response(answer)
    assert answer.is_closed
    assert body.closed == 1


def test_an_error_from_another_body_s_close_names_its_request_as_httpx2_has_it() -> None:
    # httpx2's own close, not the shortcut: it names the request in the error.
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, stream=_FailingBody()))
    with httpx2.Client(transport=transport) as http:
        answer = http.send(http.build_request("GET", "http://example.test/"), stream=True)
        with pytest.raises(httpx2.ReadError) as caught:
            close_response(answer)
    assert caught.value.request is answer.request

    async def main() -> None:
        async with httpx2.AsyncClient(transport=transport) as client:
            other = await client.send(client.build_request("GET", "http://x.test/"), stream=True)
            with pytest.raises(httpx2.ReadError) as caught:
                await aclose_response(other)
            assert caught.value.request is other.request

    asyncio.run(main())


def test_the_async_twin_closes_both_kinds(serve: Serve) -> None:
    server = serve(streams)
    body = _Body()

    async def main() -> None:
        async with async_http_client() as http:
            for _ in range(2):
                request = http.build_request("POST", f"{server.url}/v1", content=b"{}")
                answer = await http.send(request, stream=True)
                assert b"".join([data async for data in aiter_body(answer)])
                await aclose_response(answer)
                assert answer.is_closed
                await aclose_response(answer)
        transport = httpx2.MockTransport(lambda request: httpx2.Response(200, stream=body))
        async with httpx2.AsyncClient(transport=transport) as mocked:
            other = await mocked.send(mocked.build_request("GET", "http://x.test/"), stream=True)
            await aclose_response(other)
            await aclose_response(other)
            assert other.is_closed

    asyncio.run(main())
    assert [seen.connection for seen in server.seen] == [0, 0]
    assert body.closed == 1


def _half_sent(seen: Seen) -> Reply:
    """A body's first chunk, then nothing (the connection stays open)."""
    return Reply([CHUNKED_HEAD + chunk(b"data: x\n\n"), 1.0])


def test_a_body_read_after_it_was_closed_before_its_end_fails(serve: Serve) -> None:
    """As httpx2's transport's does: a read error, not what would pass for the end."""
    server = serve(_half_sent)
    with sync_http_client() as http:
        answer = sent(http, server.url)
        body = iter(answer.extensions[BODY_EXTENSION])
        assert next(body) == b"data: x\n\n"
        answer.close()
        with pytest.raises(httpx2.ReadError, match="closed before the end"):
            next(body)


async def test_a_body_read_after_it_was_closed_before_its_end_fails_async(serve: Serve) -> None:
    server = serve(_half_sent)
    async with async_http_client() as http:
        request = http.build_request("POST", f"{server.url}/v1", content=b"{}")
        answer = await http.send(request, stream=True)
        body = aiter(answer.extensions[BODY_EXTENSION])
        assert await anext(body) == b"data: x\n\n"
        await answer.aclose()
        with pytest.raises(httpx2.ReadError, match="closed before the end"):
            await anext(body)
