"""The direct lane (engine/_direct.py): a request from a client that httpx2 would add
nothing to goes straight to deltastream's transport. These tests hold it to that
promise over real sockets: the bytes sent are the bytes httpx2 sends, cookies and
redirects behave as through httpx2, and every client configuration that adds something
goes the long way through httpx2."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

import deltastream
from deltastream.engine._direct import build, lane
from deltastream.transport import sync_http_client
from deltastream.transport._common import PREPARED_HEAD, origin_of, outgoing

from ._helpers import chunk_json, sse_body
from ._raw_server import Reply, Seen, Serve, response

SSE_HEAD = b"Content-Type: text/event-stream\r\n"
STREAM = response(sse_body(chunk_json("hi"), chunk_json(finish="stop")), SSE_HEAD)
MESSAGES = [{"role": "user", "content": "hi"}]


def streams(seen: Seen) -> Reply:
    return Reply([STREAM])


def text_of(client: deltastream.Client, **options: Any) -> str:
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True, **options)
    with stream:
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream)


async def atext_of(client: deltastream.AsyncClient, **options: Any) -> str:
    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, **options
    )
    async with stream:
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])


def test_the_direct_lane_sends_the_bytes_httpx2_sends(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(streams)
    client = deltastream.Client(
        base_url=f"{server.url}/v1", api_key="k", default_headers={"X-Team": "blue"}
    )
    url = httpx2.URL(f"{server.url}/v1/chat/completions")
    assert lane(client._http, url, None) is not None
    assert text_of(client, extra_headers={"X-Trace": "1"}) == "hi"
    # httpx2 logging at INFO sends the same request the long way (and logs it).
    with caplog.at_level(logging.INFO, logger="httpx2"):
        assert lane(client._http, url, None) is None
        assert text_of(client, extra_headers={"X-Trace": "1"}) == "hi"
    assert [r.getMessage().startswith("HTTP Request: POST") for r in caplog.records] == [True]
    direct, long_way = server.seen
    assert direct.head == long_way.head
    assert direct.body == long_way.body
    assert direct.headers["x-team"] == "blue"
    assert direct.headers["x-trace"] == "1"
    client.close()


def test_the_async_direct_lane_sends_the_bytes_httpx2_sends(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(streams)

    async def main() -> None:
        client = deltastream.AsyncClient(base_url=f"{server.url}/v1", api_key="k")
        assert await atext_of(client) == "hi"
        with caplog.at_level(logging.INFO, logger="httpx2"):
            assert await atext_of(client) == "hi"
        await client.close()

    asyncio.run(main())
    direct, long_way = server.seen
    assert len(caplog.records) == 1
    assert direct.head == long_way.head
    assert direct.body == long_way.body


def _auth(http: httpx2.Client) -> None:
    http.auth = ("user", "secret")


def _hook(http: httpx2.Client) -> None:
    http.event_hooks = {"request": [lambda request: None], "response": []}


def _cookie(http: httpx2.Client) -> None:
    http.cookies.set("session", "abc")


def _params(http: httpx2.Client) -> None:
    http.params = {"api-version": "1"}


class _Sending(httpx2.Client):
    def send(self, request: httpx2.Request, **options: Any) -> httpx2.Response:
        request.headers["X-Subclass"] = "yes"
        return super().send(request, **options)


CONFIGURATIONS: dict[str, tuple[Callable[[httpx2.Client], None], str, str]] = {
    # what is set on the client -> (a header the request must carry, its value)
    "auth": (_auth, "authorization", "Basic dXNlcjpzZWNyZXQ="),
    "event hooks": (_hook, "x-team", "blue"),
    "stored cookies": (_cookie, "cookie", "session=abc"),
}


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_a_client_that_adds_something_goes_through_httpx2(serve: Serve, name: str) -> None:
    server = serve(streams)
    configure, header, value = CONFIGURATIONS[name]
    http = sync_http_client(headers={"X-Team": "blue"})
    configure(http)
    # The native client's key would win over auth=: leave it out for that case.
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key=None, http_client=http)
    url = httpx2.URL(f"{server.url}/v1/chat/completions")
    assert lane(http, url, None) is None
    assert text_of(client) == "hi"
    assert server.seen[0].headers[header] == value
    http.close()


def test_client_query_parameters_and_a_subclass_go_through_httpx2(serve: Serve) -> None:
    server = serve(streams)
    http = sync_http_client()
    _params(http)
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k", http_client=http)
    assert text_of(client) == "hi"
    assert server.seen[0].target == "/v1/chat/completions?api-version=1"
    sub = sync_http_client(client_class=_Sending)
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k", http_client=sub)
    assert text_of(client) == "hi"
    assert server.seen[1].headers["x-subclass"] == "yes"
    # Per request, extra_query= goes the long way too.
    assert text_of(client, extra_query={"q": "1"}) == "hi"
    assert server.seen[2].target == "/v1/chat/completions?q=1"
    for each in (http, sub):
        each.close()


def test_a_transport_mounted_for_the_origin_is_used(serve: Serve) -> None:
    server = serve(streams)
    seen: list[str] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        body = sse_body(chunk_json("mock"), chunk_json(finish="stop"))
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = sync_http_client(mounts={server.url: httpx2.MockTransport(answer)})
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k", http_client=http)
    assert text_of(client) == "mock"
    assert seen == [f"{server.url}/v1/chat/completions"]
    assert server.seen == []
    http.close()


def test_a_closed_client_refuses_as_httpx2_does(serve: Serve) -> None:
    server = serve(streams)
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k")
    client.close()
    with pytest.raises(RuntimeError, match="client has been closed"):
        text_of(client)


def test_cookies_set_by_the_server_are_kept_and_sent_back(serve: Serve) -> None:
    def handler(seen: Seen) -> Reply:
        if "cookie" not in seen.headers:
            return Reply(
                [response(sse_body(chunk_json("first")), SSE_HEAD + b"Set-Cookie: s=1\r\n")]
            )
        return Reply([STREAM])

    server = serve(handler)
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k")
    assert text_of(client) == "first"
    assert dict(client._http.cookies) == {"s": "1"}
    assert text_of(client) == "hi"
    assert server.seen[1].headers["cookie"] == "s=1"
    client.close()


def _redirecting(seen: Seen) -> Reply:
    if seen.target == "/v1/chat/completions":
        return Reply(
            [response(b"", b"Location: /v2/chat/completions\r\n", b"307 Temporary Redirect")]
        )
    return Reply([STREAM])


def test_a_redirect_is_followed_once_as_httpx2_follows_it(serve: Serve) -> None:
    server = serve(_redirecting)
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k")
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with stream:
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "hi"
    assert [s.target for s in server.seen] == ["/v1/chat/completions", "/v2/chat/completions"]
    assert server.seen[0].body == server.seen[1].body  # a 307 sends the body again
    assert [r.status_code for r in stream.response.history] == [307]
    assert stream.response.request.url.path == "/v2/chat/completions"
    client.close()


def test_an_async_redirect_is_followed_once(serve: Serve) -> None:
    server = serve(_redirecting)

    async def main() -> list[int]:
        client = deltastream.AsyncClient(base_url=f"{server.url}/v1", api_key="k")
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        async with stream:
            assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "hi"
        await client.close()
        return [r.status_code for r in stream.response.history]

    assert asyncio.run(main()) == [307]
    assert [s.target for s in server.seen] == ["/v1/chat/completions", "/v2/chat/completions"]


def test_the_response_is_whole_as_httpx2_leaves_it(serve: Serve) -> None:
    server = serve(streams)
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k")
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with stream:
        list(stream)
    response = stream.response
    assert response.request.method == "POST"
    assert response.request.content == server.seen[0].body
    assert response.elapsed.total_seconds() > 0
    assert response.http_version == "HTTP/1.1"
    client.close()


def test_a_url_of_another_scheme_is_refused_as_httpx2_refuses_it() -> None:
    # Its template has no prepared head (nor origin): the transport refuses it.
    client = deltastream.Client(base_url="ftp://127.0.0.1:9/v1", api_key="k", max_retries=0)
    with pytest.raises(deltastream.native.APIConnectionError) as caught:
        text_of(client)
    assert isinstance(caught.value.__cause__, httpx2.UnsupportedProtocol)
    client.close()


def test_a_transport_error_carries_its_request() -> None:
    client = deltastream.Client(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    with pytest.raises(deltastream.native.APIConnectionError) as caught:
        text_of(client)
    cause = caught.value.__cause__
    assert isinstance(cause, httpx2.ConnectError)
    assert cause.request.url == "http://127.0.0.1:9/v1/chat/completions"
    client.close()


def _state(obj: object) -> dict[str, Any]:
    """An httpx2 object's attributes, headers as their (name, lowered, value) list."""
    found = dict(vars(obj))
    for name, value in list(found.items()):
        if isinstance(value, httpx2.Headers):
            found[name] = (value._list, value.encoding)
        elif isinstance(value, httpx2.ByteStream):
            found[name] = b"".join(value)
    return found


def test_the_request_built_by_hand_is_the_one_httpx2_builds() -> None:
    # build() sets a Request's attributes itself rather than run its constructor: a
    # release of httpx2 that adds or renames one must fail here, not in a user's code.
    client = deltastream.Client(base_url="http://127.0.0.1:9/v1", api_key="k")
    url = httpx2.URL("http://127.0.0.1:9/v1/chat/completions")
    content = b'{"model":"m"}'
    timeout = httpx2.Timeout(5.0)
    ours = build(client._http, "POST", url, {"X-Trace": "1"}, content, timeout, {})
    theirs = client._http.build_request(
        "POST", url, headers={"X-Trace": "1"}, content=content, timeout=timeout
    )
    state = _state(ours)
    prepared = state.pop(PREPARED_HEAD)
    assert state == _state(theirs)
    # The head it carries, encoded once per URL and header set, is the one the
    # transport would encode from httpx2's request.
    head = prepared.head(len(content))
    assert (prepared.method, head, False, prepared.asks_close) == outgoing(theirs, None)
    assert prepared.origin == origin_of(theirs.url)  # where the transport sends it
    # Every request from the template shares it; each head has its own Content-Length.
    longer = build(client._http, "POST", url, {"X-Trace": "1"}, content * 2, timeout, {})
    assert getattr(longer, PREPARED_HEAD) is prepared
    assert b"Content-Length: %d\r\n" % (2 * len(content)) in outgoing(longer, None)[1]
    client.close()


def test_each_request_has_headers_of_its_own_though_made_from_one_template() -> None:
    # The headers are made from the template's list when first read: a change to one
    # request's must not reach the template, nor another request's.
    client = deltastream.Client(base_url="http://127.0.0.1:9/v1", api_key="k")
    url = httpx2.URL("http://127.0.0.1:9/v1/chat/completions")
    timeout = httpx2.Timeout(5.0)

    def request(content: bytes) -> httpx2.Request:
        return build(client._http, "POST", url, {"X-Trace": "1"}, content, timeout, {})

    first, second = request(b"{}"), request(b"[1, 2]")
    first.headers["X-Extra"] = "1"
    del first.headers["X-Trace"]
    assert (first.headers.get("x-extra"), first.headers.get("x-trace")) == ("1", None)
    assert (second.headers.get("x-extra"), second.headers["x-trace"]) == (None, "1")
    assert (first.headers["content-length"], second.headers["content-length"]) == ("2", "6")
    assert (
        request(b"{}").headers
        == client._http.build_request("POST", url, headers={"X-Trace": "1"}, content=b"{}").headers
    )
    assert first.headers.copy() == first.headers
    client.close()


def test_a_redirect_does_not_inherit_the_prepared_head(serve: Serve) -> None:
    # httpx2 copies a request's extensions into the redirect's request: the prepared
    # head (of the first URL) must not go with them.
    server = serve(_redirecting)
    client = deltastream.Client(base_url=f"{server.url}/v1", api_key="k")
    assert text_of(client) == "hi"
    first, second = server.seen
    assert first.target == "/v1/chat/completions"
    assert second.target == "/v2/chat/completions"
    client.close()
