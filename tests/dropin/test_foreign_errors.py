"""Errors a stream's reads raise that are not httpx2's own: the older ``httpx``
package's, from an ``http_client`` built on it (openai accepts one), and an
``ssl.SSLError`` that httpx2's TLS streams let through. openai turns each into its
``APIConnectionError`` or ``APITimeoutError``; the drop-in must too, and take the older
package's ``Timeout`` as openai does."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest

import deltastream

EVENT = (
    b"data: "
    + json.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
        }
    ).encode()
    + b"\n\n"
)
DONE = b"data: [DONE]\n\n"
MESSAGES: Any = [{"role": "user", "content": "hi"}]
HEADERS = {"content-type": "text/event-stream"}
# openai's own streams wrap these errors since its request_exceptions() (the oldest
# openai the drop-in supports lets them through): then it is only the drop-in's rule.
_OPENAI_WRAPS = hasattr(openai._httpx2, "request_exceptions")
_OLD = pytest.mark.skipif(not _OPENAI_WRAPS, reason="this openai lets them through")
CLIENTS = [pytest.param(openai.OpenAI, marks=_OLD), deltastream.OpenAI]
ASYNC_CLIENTS = [pytest.param(openai.AsyncOpenAI, marks=_OLD), deltastream.AsyncOpenAI]


class _Breaking(httpx.SyncByteStream, httpx2.SyncByteStream):
    """One event, then ``error`` raised by the next read."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __iter__(self) -> Iterator[bytes]:
        yield EVENT
        raise self.error


class _AsyncBreaking(httpx.AsyncByteStream, httpx2.AsyncByteStream):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield EVENT
        raise self.error


def _legacy(error: BaseException) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=HEADERS, stream=_Breaking(error))

    return httpx.Client(transport=httpx.MockTransport(handler))


def _legacy_async(error: BaseException) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=HEADERS, stream=_AsyncBreaking(error))

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def _seen(client: Any) -> tuple[list[str | None], BaseException | None]:
    texts: list[str | None] = []
    with client:
        try:
            stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            texts.extend(chunk.choices[0].delta.content for chunk in stream)
        except Exception as exc:  # compared with openai's below
            return texts, exc
    return texts, None


async def _aseen(client: Any) -> tuple[list[str | None], BaseException | None]:
    texts: list[str | None] = []
    async with client:
        try:
            stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            async for chunk in stream:
                texts.append(chunk.choices[0].delta.content)
        except Exception as exc:
            return texts, exc
    return texts, None


def _reset() -> BaseException:
    return httpx.ReadError("reset")


def _cut() -> BaseException:
    return httpx.RemoteProtocolError("cut")


def _slow() -> BaseException:
    return httpx.ReadTimeout("slow")


LEGACY_ERRORS: dict[str, tuple[Callable[[], BaseException], type[BaseException]]] = {
    "read error": (_reset, openai.APIConnectionError),
    "protocol error": (_cut, openai.APIConnectionError),
    "read timeout": (_slow, openai.APITimeoutError),
}


@pytest.mark.parametrize("case", LEGACY_ERRORS)
@pytest.mark.parametrize("cls", CLIENTS, ids=["openai", "drop-in"])
def test_an_older_httpx_clients_error_mid_stream_is_openais(cls: Any, case: str) -> None:
    make, expected = LEGACY_ERRORS[case]
    client = cls(base_url="http://x/v1", api_key="k", max_retries=0, http_client=_legacy(make()))
    texts, error = _seen(client)
    assert texts == ["hi"]
    assert isinstance(error, expected)
    assert isinstance(error, BaseException)
    assert isinstance(error.__cause__, httpx.TransportError)


@pytest.mark.parametrize("case", LEGACY_ERRORS)
@pytest.mark.parametrize("cls", ASYNC_CLIENTS, ids=["openai", "drop-in"])
async def test_an_older_httpx_clients_error_mid_stream_is_openais_async(
    cls: Any, case: str
) -> None:
    make, expected = LEGACY_ERRORS[case]
    http = _legacy_async(make())
    client = cls(base_url="http://x/v1", api_key="k", max_retries=0, http_client=http)
    texts, error = await _aseen(client)
    assert texts == ["hi"]
    assert isinstance(error, expected)


@pytest.mark.parametrize("cls", CLIENTS, ids=["openai", "drop-in"])
def test_an_ssl_error_mid_stream_is_a_connection_error_as_in_openai(cls: Any) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        broken = ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] bad record mac")
        return httpx2.Response(200, headers=HEADERS, stream=_Breaking(broken))

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    client = cls(base_url="http://x/v1", api_key="k", max_retries=0, http_client=http)
    texts, error = _seen(client)
    assert texts == ["hi"]
    assert isinstance(error, openai.APIConnectionError)
    assert isinstance(error.__cause__, ssl.SSLError)


def _answers(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, headers=HEADERS, content=EVENT + DONE)


@pytest.mark.parametrize("cls", [openai.OpenAI, deltastream.OpenAI], ids=["openai", "drop-in"])
def test_the_older_httpx_packages_timeout_is_taken_as_openai_takes_it(cls: Any) -> None:
    timeout = httpx.Timeout(60.0, connect=5.0)
    http = httpx2.Client(transport=httpx2.MockTransport(_answers))
    with cls(base_url="http://x/v1", api_key="k", http_client=http, timeout=timeout) as client:
        for each in (client, client.with_options(timeout=timeout)):
            stream = each.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            assert [chunk.choices[0].delta.content for chunk in stream] == ["hi"]
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, timeout=timeout
        )
        assert [chunk.choices[0].delta.content for chunk in stream] == ["hi"]
