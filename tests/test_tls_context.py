"""The client TLS context: ALPN ``http/1.1`` offered, and the context built only when
an https origin is first used, then shared (counted by wrapping httpx2's
``create_ssl_context``, which builds it)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ._raw_server import Reply, Seen, Serve, ok
from ._twins import KINDS, Twin


def echo(seen: Seen) -> Reply:
    return ok(seen.target.encode())


@pytest.fixture
def alpn_server(serve: Serve, certificate: tuple[Path, Path]) -> str:
    """An https server (on the test certificate) that takes ALPN ``http/1.1``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.set_alpn_protocols(["http/1.1"])
    return serve(echo, tls=context).url


@pytest.fixture
def trust_test_certificate(monkeypatch: pytest.MonkeyPatch, certificate: tuple[Path, Path]) -> None:
    """``verify=True`` (the default) trusts the test certificate, through the variable
    httpx2's default context reads."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TLS context built from now on (the arguments it was built with)."""
    made: list[Any] = []
    real: Callable[..., ssl.SSLContext] = httpx2.create_ssl_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(httpx2, "create_ssl_context", counting)
    return made


def selected_alpn(resp: httpx2.Response) -> str | None:
    ssl_object = resp.extensions["network_stream"].get_extra_info("ssl_object")
    protocol: str | None = ssl_object.selected_alpn_protocol()
    return protocol


@pytest.mark.usefixtures("trust_test_certificate")
@pytest.mark.parametrize("kind", KINDS)
def test_alpn_http_1_1_is_offered(kind: str, alpn_server: str) -> None:
    with Twin(kind) as twin:
        resp = twin.request("GET", alpn_server + "/a")
        assert resp.text == "/a"
        assert selected_alpn(resp) == "http/1.1"  # before the connection is closed


@pytest.mark.parametrize("kind", KINDS)
def test_alpn_is_offered_on_a_context_of_the_callers(
    kind: str, alpn_server: str, certificate: tuple[Path, Path]
) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    with Twin(kind, verify=context) as twin:
        assert selected_alpn(twin.request("GET", alpn_server)) == "http/1.1"


@pytest.mark.usefixtures("trust_test_certificate")
@pytest.mark.parametrize("kind", KINDS)
def test_the_tls_context_is_built_on_the_first_https_origin_and_shared(
    kind: str, serve: Serve, alpn_server: str, builds: list[Any]
) -> None:
    plain = serve(echo)
    with Twin(kind, "factory") as first, Twin(kind, "factory") as second:
        assert first.request("GET", plain.url + "/plain").text == "/plain"
        assert builds == []  # http:// only: no CA bundle loaded
        assert first.request("GET", alpn_server + "/tls").text == "/tls"
        assert second.request("GET", alpn_server + "/tls").text == "/tls"
    # One context for both clients (none if an earlier test in this process built it).
    assert len(builds) <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_different_settings_get_different_contexts(kind: str, alpn_server: str) -> None:
    with Twin(kind, verify=False) as unverified:
        assert unverified.request("GET", alpn_server + "/x").text == "/x"
    with Twin(kind) as verifying, pytest.raises(httpx2.ConnectError, match="CERTIFICATE"):
        verifying.request("GET", alpn_server + "/x")
