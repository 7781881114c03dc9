"""Proxies with ``sync_http_client`` / ``async_http_client``: from the environment
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), from ``proxy=`` and
``mounts=``, through a proxy written here (tests/_proxy_server.py). Each case also runs
on httpx2's own client and transport: the proxy must see the same requests."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from deltastream.transport import BODY_EXTENSION

from ._proxy_server import ProxySeen, ProxyServer
from ._raw_server import RawServer, Reply, Seen, Serve, ok
from ._twins import KINDS, Twin

OURS_AND_THEIRS = ["factory", "httpx2"]


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the machine has set, each test starts with no proxy settings."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def proxies() -> Iterator[list[ProxyServer]]:
    started: list[ProxyServer] = []
    yield started
    assert all([proxy.stop() for proxy in started]), "a proxy thread did not stop"


@pytest.fixture
def proxy(proxies: list[ProxyServer]) -> ProxyServer:
    made = ProxyServer()
    proxies.append(made)
    return made


@pytest.fixture
def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts the test certificate."""
    context = ssl.create_default_context(cafile=str(certificate[0]))
    return context


def echo(seen: Seen) -> Reply:
    return ok(seen.target.encode())


def seen_by(proxy: ProxyServer) -> list[tuple[str, str, dict[str, str]]]:
    """What the proxy was asked, without the header that differs per run."""
    return [(s.method, s.target, _stable(s)) for s in proxy.seen]


def _stable(seen: ProxySeen) -> dict[str, str]:
    return {k: v for k, v in seen.headers.items() if k != "user-agent"}


def through(kind: str, mode: str, url: str, **options: Any) -> httpx2.Response:
    with Twin(kind, mode, **options) as twin:
        return twin.request("GET", url)


@pytest.mark.parametrize("mode", OURS_AND_THEIRS)
@pytest.mark.parametrize("kind", KINDS)
def test_http_proxy_from_the_environment_forwards(
    kind: str, mode: str, serve: Serve, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(echo)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    url = server.url + "/v1/chat?x=1"
    resp = through(kind, mode, url)
    assert resp.text == url  # the origin got the absolute form, as the proxy passed it on
    assert [(s.method, s.target, s.headers["host"]) for s in proxy.seen] == [
        ("GET", url, server.url.removeprefix("http://"))
    ]
    assert (BODY_EXTENSION in resp.extensions) is (mode == "factory")  # ours carried it


@pytest.mark.parametrize("mode", OURS_AND_THEIRS)
@pytest.mark.parametrize("kind", KINDS)
def test_https_proxy_from_the_environment_tunnels(
    kind: str,
    mode: str,
    tls_server: RawServer,
    trusting: ssl.SSLContext,
    proxy: ProxyServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    resp = through(kind, mode, tls_server.url + "/secret", verify=trusting)
    assert resp.text == "/secret"  # origin form inside the tunnel
    authority = tls_server.url.removeprefix("https://")
    assert seen_by(proxy) == [("CONNECT", authority, {"host": authority, "accept": "*/*"})]
    assert (BODY_EXTENSION in resp.extensions) is (mode == "factory")


@pytest.mark.parametrize("kind", KINDS)
def test_all_proxy_serves_both_schemes(
    kind: str,
    serve: Serve,
    tls_server: RawServer,
    trusting: ssl.SSLContext,
    proxy: ProxyServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = serve(echo)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    with Twin(kind, "factory", verify=trusting) as twin:
        assert twin.request("GET", plain.url + "/a").status_code == 200
        assert twin.request("GET", tls_server.url + "/b").text == "/b"
    assert [s.method for s in proxy.seen] == ["GET", "CONNECT"]


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
@pytest.mark.parametrize("kind", KINDS)
def test_no_proxy_goes_direct(
    kind: str, no_proxy: str, serve: Serve, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(echo)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    resp = through(kind, "factory", server.url + "/direct")
    assert resp.text == "/direct"  # origin form: not through a proxy
    assert BODY_EXTENSION in resp.extensions
    assert proxy.seen == []


@pytest.mark.parametrize("kind", KINDS)
def test_trust_env_false_ignores_the_environment(
    kind: str, serve: Serve, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(echo)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert through(kind, "factory", server.url + "/x", trust_env=False).text == "/x"
    assert proxy.seen == []


@pytest.mark.parametrize("mode", OURS_AND_THEIRS)
@pytest.mark.parametrize("kind", KINDS)
def test_proxy_argument_with_credentials(
    kind: str,
    mode: str,
    serve: Serve,
    tls_server: RawServer,
    trusting: ssl.SSLContext,
    proxies: list[ProxyServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``proxy=`` wins over the environment; its credentials go to the proxy on both
    kinds of request."""
    guarded = ProxyServer(credentials=("user", "pa:ss"))
    ignored = ProxyServer()
    proxies += [guarded, ignored]
    monkeypatch.setenv("ALL_PROXY", ignored.url)
    plain = serve(echo)
    with_credentials = guarded.url.replace("http://", "http://user:pa%3Ass@")
    with Twin(kind, mode, proxy=with_credentials, verify=trusting) as twin:
        assert twin.request("GET", plain.url + "/a").status_code == 200
        assert twin.request("GET", tls_server.url + "/b").text == "/b"
    assert [s.method for s in guarded.seen] == ["GET", "CONNECT"]
    assert {s.headers["proxy-authorization"] for s in guarded.seen} == {"Basic dXNlcjpwYTpzcw=="}
    assert ignored.seen == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_same_requests_reach_the_proxy_as_with_httpx2(
    kind: str,
    serve: Serve,
    tls_server: RawServer,
    trusting: ssl.SSLContext,
    proxies: list[ProxyServer],
) -> None:
    """Proxy headers too: ``httpx2.Proxy(headers=..., auth=...)``."""
    plain = serve(echo)
    seen = []
    for mode in OURS_AND_THEIRS:
        server = ProxyServer()
        proxies.append(server)
        route = httpx2.Proxy(server.url, auth=("a", "b"), headers={"X-Route": "blue"})
        with Twin(kind, mode, proxy=route, verify=trusting) as twin:
            twin.request("POST", plain.url + "/p", content=b"body")
            twin.request("GET", tls_server.url + "/t")
        seen.append(seen_by(server))
    ours, theirs = seen
    assert ours == theirs
    assert [headers["x-route"] for _, _, headers in ours] == ["blue", "blue"]


@pytest.mark.parametrize("mode", OURS_AND_THEIRS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_tunnel_is_a_proxy_error(
    kind: str, mode: str, tls_server: RawServer, proxies: list[ProxyServer]
) -> None:
    refusing = ProxyServer(refuse=b"403 Forbidden")
    proxies.append(refusing)
    with pytest.raises(httpx2.ProxyError, match=r"^403 Forbidden$"):
        through(kind, mode, tls_server.url, proxy=refusing.url)


@pytest.mark.parametrize("kind", KINDS)
def test_mounts_are_laid_over_the_proxies(
    kind: str, serve: Serve, proxy: ProxyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(echo)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    def mocked(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text="mocked")

    mounts: dict[str, Any] = {
        "http://mocked.test": httpx2.MockTransport(mocked),
        f"http://127.0.0.1:{server.address[1]}": None,  # the client's own transport: direct
    }
    with Twin(kind, "factory", mounts=mounts) as twin:
        assert twin.request("GET", "http://mocked.test/").text == "mocked"
        assert twin.request("GET", server.url + "/direct").text == "/direct"
    assert proxy.seen == []


def test_a_transport_argument_is_refused() -> None:
    from deltastream.transport import sync_http_client

    with pytest.raises(TypeError, match="transport="):
        sync_http_client(transport=httpx2.MockTransport(lambda request: httpx2.Response(200)))


def test_a_client_class_of_the_callers(serve: Serve, proxy: ProxyServer) -> None:
    """openai's DefaultHttpxClient and its kin: subclasses of httpx2's clients."""
    from deltastream.transport import async_http_client, sync_http_client

    class Mine(httpx2.Client):
        pass

    class MineAsync(httpx2.AsyncClient):
        pass

    server = serve(echo)
    with sync_http_client(client_class=Mine, proxy=proxy.url) as client:
        assert isinstance(client, Mine)
        assert client.get(server.url + "/x").status_code == 200
    assert [s.method for s in proxy.seen] == ["GET"]
    assert isinstance(async_http_client(client_class=MineAsync), MineAsync)
