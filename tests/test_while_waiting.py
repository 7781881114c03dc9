"""A request's ``while_waiting`` callable (``WAITING_EXTENSION``): deltastream's
transports call it once the request is out and before they wait for the answer, so a
stream is set up while the server works (``engine._streams.InFlight``).

The servers here answer only once the callable has run, after it has seen the request
arrive: a transport that called it before sending, or only after the answer, or never,
would wait for an answer that does not come."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx2

import deltastream
from deltastream.engine._errors import APIStatusError
from deltastream.engine._http import RequestOptions, asend, send
from deltastream.engine._streams import InFlight, open_stream
from deltastream.engine.types.chat import ChatCompletionChunk
from deltastream.native import Stream
from deltastream.transport import WAITING_EXTENSION, AsyncHTTP11Transport, HTTP11Transport

from ._helpers import chunk_json, event_stream, sse_body
from ._raw_server import RawServer, Reply, Seen, Serve, response, wait_until

_STREAM = b"data: {}\n\ndata: [DONE]\n\n"


def _gated(serve: Serve) -> tuple[RawServer, Callable[[], None], list[str]]:
    """A server that answers each request once the returned callable has run; the
    callable records, each time it runs, how many requests the server had then."""
    go_on = threading.Event()
    calls: list[str] = []

    def handler(seen: Seen) -> Reply:
        return Reply([go_on, response(_STREAM, headers=b"Content-Type: text/event-stream\r\n")])

    server = serve(handler)

    def while_waiting() -> None:
        assert wait_until(lambda: len(server.seen) > len(calls)), "the request never came"
        calls.append(server.seen[-1].body.decode())
        go_on.set()

    return server, while_waiting, calls


def _request(client: httpx2.Client | httpx2.AsyncClient, url: str, hook: object) -> httpx2.Request:
    return client.build_request(
        "POST", url, content=b'{"n":1}', extensions={WAITING_EXTENSION: hook}
    )


def test_the_sync_transport_calls_it_once_the_request_is_out(serve: Serve) -> None:
    server, hook, calls = _gated(serve)
    with httpx2.Client(transport=HTTP11Transport(), timeout=3.0) as client:
        for _ in range(2):  # on a new connection, then on the same one again
            request = _request(client, server.url, hook)
            assert client.send(request).content == _STREAM
    assert server.connections_of() == [0, 0]
    assert calls == ['{"n":1}', '{"n":1}']
    assert WAITING_EXTENSION not in request.extensions  # called once, not held on to


async def test_the_async_transport_calls_it_once_the_request_is_out(serve: Serve) -> None:
    server, hook, calls = _gated(serve)
    async with httpx2.AsyncClient(transport=AsyncHTTP11Transport(), timeout=3.0) as client:
        for _ in range(2):
            request = _request(client, server.url, hook)
            assert (await client.send(request)).content == _STREAM
    assert server.connections_of() == [0, 0]
    assert calls == ['{"n":1}', '{"n":1}']
    assert WAITING_EXTENSION not in request.extensions


def _options(url: str, hook: Callable[[], None]) -> RequestOptions:
    return RequestOptions(
        "POST",
        url,
        {"Authorization": "Bearer x"},
        body={"n": 1},
        stream=True,
        while_waiting=hook,
    )


def _read(response: httpx2.Response) -> bytes:
    try:
        return response.read()
    finally:
        response.close()


async def _aread(response: httpx2.Response) -> bytes:
    try:
        return await response.aread()
    finally:
        await response.aclose()


def test_a_sent_request_calls_it_on_the_direct_lane_and_the_long_way(serve: Serve) -> None:
    server, hook, calls = _gated(serve)
    with deltastream.Client(base_url=server.url, api_key="x") as client:
        http = client._http
        assert _read(send(http, _options(server.url, hook))) == _STREAM  # direct
        http.event_hooks["request"].append(lambda request: None)  # httpx2's own send
        assert _read(send(http, _options(server.url, hook))) == _STREAM
    assert calls == ['{"n":1}', '{"n":1}']


async def test_an_async_sent_request_calls_it_both_ways(serve: Serve) -> None:
    server, hook, calls = _gated(serve)

    async def on_request(request: httpx2.Request) -> None:
        pass

    async with deltastream.AsyncClient(base_url=server.url, api_key="x") as client:
        http = client._http
        assert await _aread(await asend(http, _options(server.url, hook))) == _STREAM
        http.event_hooks["request"].append(on_request)
        assert await _aread(await asend(http, _options(server.url, hook))) == _STREAM
    assert calls == ['{"n":1}', '{"n":1}']


def _bound(in_flight: InFlight[Stream[ChatCompletionChunk]]) -> Stream[ChatCompletionChunk]:
    body = sse_body(chunk_json("Hel"), chunk_json("lo", finish="stop"))
    http = httpx2.Client(transport=httpx2.MockTransport(lambda request: event_stream(body)))
    request = http.build_request("POST", "http://testserver/v1/chat/completions")
    return in_flight.bind(http.send(request, stream=True))


def _text(stream: Stream[ChatCompletionChunk]) -> str:
    with stream:
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream)


def test_in_flight_binds_the_stream_made_in_the_wait_and_makes_no_other() -> None:
    made: list[Stream[ChatCompletionChunk]] = []

    def make() -> Stream[ChatCompletionChunk]:
        made.append(Stream(None))
        return made[-1]

    in_flight = InFlight(make)
    in_flight()
    in_flight()  # a retried request's second attempt: the stream is made already
    assert len(made) == 1
    stream = _bound(in_flight)
    in_flight()  # a request copied from a bound one: nothing more is made
    assert made == [stream]
    assert _text(stream) == "Hello"
    assert stream.get_final_completion().choices[0].message.content == "Hello"
    assert stream.metrics.chunks == 2


def test_in_flight_that_no_transport_called_makes_its_stream_when_bound() -> None:
    in_flight = InFlight(lambda: Stream[ChatCompletionChunk](None))
    assert _text(_bound(in_flight)) == "Hello"


def test_open_stream_leaves_no_hook_on_its_request_whether_it_opens_or_fails() -> None:
    """A request built from the options later (a resumed Responses stream's) makes no
    stream, and a failed one leaves no cycle from the options to the stream maker."""
    body = sse_body(chunk_json("Hi", finish="stop"))

    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/bad"):
            return httpx2.Response(400, json={"error": {"message": "no"}})
        return event_stream(body)

    with httpx2.Client(transport=httpx2.MockTransport(answer)) as http:
        for path, opens in (("/good", True), ("/bad", False)):
            options = RequestOptions("POST", "http://testserver" + path, {}, body={}, max_retries=0)
            try:
                stream = open_stream(http, options, lambda: Stream[ChatCompletionChunk](None))
            except APIStatusError:
                assert not opens
            else:
                assert opens
                assert _text(stream) == "Hi"
            assert options.while_waiting is None
