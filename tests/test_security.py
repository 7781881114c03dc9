"""Security properties of the client.

- The API key never shows up in a repr, a log line (DEBUG, every logger), an exception
  (``str``, ``repr``, the formatted traceback, ``body``, the request and response
  reprs) or a file the local proxy records.
- A redirect to another origin never carries the ``Authorization`` header.
- TLS certificates are verified by default: a self-signed certificate fails the
  request with ``APIConnectionError``.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import shutil
import ssl
import subprocess
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream.server import create_app, run_in_thread

from ._helpers import MODES

KEY = "sk-SECRET-5f3a9c1e7b2d4a6f8e0c"  # distinctive, so any leak is found
# Parts of it that would still be a leak (a mask shows at most a few characters).
FRAGMENTS = [KEY, KEY[3:], "5f3a9c1e7b2d4a6f8e0c", "SECRET-5f3a"]
STORY = [{"role": "user", "content": "Write a story about a robot."}]
FAULT = "X-Deltastream-Fault"


def assert_no_key(text: str, where: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"the API key leaks into {where}: {text[:300]!r}"


def exception_texts(exc: BaseException) -> dict[str, str]:
    texts = {
        "str": str(exc),
        "repr": repr(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    for name in ("body", "request", "response", "partial", "message"):
        value = getattr(exc, name, None)
        if value is not None:
            texts[name] = repr(value)
    request = getattr(exc, "request", None)
    if isinstance(request, httpx2.Request):
        texts["request.url"] = str(request.url)
    return texts


@pytest.fixture(scope="module")
def keyed_url() -> Iterator[str]:
    """A server that wants ``KEY``."""
    with run_in_thread(create_app("scripted", api_key=KEY)) as url:
        yield url


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    for name in ("httpx2", "httpcore2", "httpx", "httpcore", "deltastream", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def check_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records, "nothing was logged: the capture is not working"
    for record in caplog.records:
        assert_no_key(record.getMessage(), f"log record {record.name}")
        assert_no_key(repr(record.args), f"log record args {record.name}")
    assert_no_key(caplog.text, "the log")


@pytest.mark.parametrize("mode", MODES)
async def test_the_key_is_in_no_repr_log_or_error(
    mode: str, keyed_url: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    texts: dict[str, str] = {}
    errors: list[BaseException] = []
    faults = ["error-after=2", "garbage-after=2", "drop-after=2", "no-done"]
    if mode == "sync":
        client = deltastream.Client(base_url=keyed_url, api_key=KEY, max_retries=0)
        with client:
            texts["client"] = repr(client) + str(client)
            texts["with_options"] = repr(client.with_options(max_retries=1))
            with client.chat.completions.create(model="m", messages=STORY, stream=True) as s:
                texts["stream"] = repr(s) + str(s) + repr(s.response) + repr(s.response.request)
                texts["chunks"] = "".join(repr(c) for c in s)
                texts["snapshot"] = repr(s.current_snapshot)
            for fault in faults:
                try:
                    client.chat.completions.create(
                        model="m", messages=STORY, stream=True, extra_headers={FAULT: fault}
                    ).until_done()
                except deltastream.native.APIError as exc:
                    errors.append(exc)
            with deltastream.Client(base_url=keyed_url, api_key=KEY + "x", max_retries=0) as bad:
                try:  # a status error whose request carries a (wrong) key
                    bad.chat.completions.create(model="m", messages=STORY, stream=True)
                except deltastream.native.AuthenticationError as exc:
                    errors.append(exc)
            try:
                client.chat.completions.create(
                    model="m",
                    messages=STORY,
                    stream=True,
                    extra_headers={FAULT: "status=500; times=5; key=security-sync"},
                )
            except deltastream.native.InternalServerError as exc:
                errors.append(exc)
    else:
        aclient = deltastream.AsyncClient(base_url=keyed_url, api_key=KEY, max_retries=0)
        async with aclient:
            texts["client"] = repr(aclient) + str(aclient)
            astream = await aclient.chat.completions.create(model="m", messages=STORY, stream=True)
            async with astream:
                texts["stream"] = repr(astream) + repr(astream.response.request)
                texts["chunks"] = "".join([repr(c) async for c in astream])
            for fault in faults:
                try:
                    faulty = await aclient.chat.completions.create(
                        model="m", messages=STORY, stream=True, extra_headers={FAULT: fault}
                    )
                    await faulty.until_done()
                except deltastream.native.APIError as exc:
                    errors.append(exc)
            async with deltastream.AsyncClient(
                base_url=keyed_url, api_key=KEY + "x", max_retries=0
            ) as abad:
                try:
                    await abad.chat.completions.create(model="m", messages=STORY, stream=True)
                except deltastream.native.AuthenticationError as exc:
                    errors.append(exc)
    # Every fault produced its error, and each is clean.
    assert len(errors) == len(faults) + (2 if mode == "sync" else 1)
    for error in errors:
        for where, text in exception_texts(error).items():
            assert_no_key(text, f"{type(error).__name__}.{where}")
    for where, text in texts.items():
        assert_no_key(text, where)
    check_logs(debug_logs)


def test_the_key_from_the_environment_is_not_shown(
    keyed_url: str, monkeypatch: pytest.MonkeyPatch, debug_logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", keyed_url)
    with deltastream.Client(max_retries=0) as client:
        assert_no_key(repr(client), "repr(client)")
        text = client.chat.completions.create(model="m", messages=STORY, stream=True)
        assert_no_key(repr(text), "repr(stream)")
        text.close()
    check_logs(debug_logs)


def test_the_proxy_records_no_key(keyed_url: str, tmp_path: Path) -> None:
    """The local server's proxy passes the key on upstream but records only bodies."""
    app = create_app("proxy", upstream=keyed_url, record_dir=tmp_path)
    with (
        run_in_thread(app) as proxy_url,
        deltastream.Client(base_url=proxy_url, api_key=KEY, max_retries=0) as client,
    ):
        client.chat.completions.create(model="m", messages=STORY, stream=True).until_done()
        with contextlib.suppress(deltastream.native.StreamTruncatedError):
            client.chat.completions.create(
                model="m", messages=STORY, stream=True, extra_headers={FAULT: "no-done"}
            ).until_done()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files, "the proxy recorded nothing"
    for path in files:
        assert_no_key(path.read_bytes().decode("utf-8", "replace"), f"recorded file {path.name}")


# -- redirects --------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every POST with a tiny chat stream and records the request headers."""

    seen: list[dict[str, str]]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = (
            b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
            b'"choices":[{"index":0,"delta":{"content":"moved"},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n"
        )
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Redirector(http.server.BaseHTTPRequestHandler):
    target: str

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.send_response(307)
        self.send_header("location", self.target + self.path)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serving(
    handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None = None
) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"], ids=["other-host", "other-port"])
async def test_a_redirect_to_another_origin_drops_the_authorization(mode: str, host: str) -> None:
    seen: list[dict[str, str]] = []
    recorder = type("Recorder", (_Recorder,), {"seen": seen})
    with serving(recorder) as target_port:
        redirector = type("Redirector", (_Redirector,), {"target": f"http://{host}:{target_port}"})
        with serving(redirector) as port:
            base_url = f"http://127.0.0.1:{port}/v1"
            if mode == "sync":
                with deltastream.Client(base_url=base_url, api_key=KEY, max_retries=0) as c:
                    final = c.chat.completions.create(
                        model="m", messages=STORY, stream=True
                    ).get_final_completion()
            else:
                async with deltastream.AsyncClient(
                    base_url=base_url, api_key=KEY, max_retries=0
                ) as ac:
                    stream = await ac.chat.completions.create(
                        model="m", messages=STORY, stream=True
                    )
                    final = await stream.get_final_completion()
    assert final.choices[0].message.content == "moved"  # the redirect was followed
    assert len(seen) == 1
    assert "authorization" not in seen[0], seen[0]
    for value in seen[0].values():
        assert_no_key(value, "the redirected request's headers")


# -- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def _is_verification_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@pytest.mark.parametrize("mode", MODES)
async def test_tls_is_verified_by_default(mode: str, self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    seen: list[dict[str, str]] = []
    recorder = type("Recorder", (_Recorder,), {"seen": seen})
    with serving(recorder, _server_context(cert, key)) as port:
        base_url = f"https://127.0.0.1:{port}/v1"
        failure: BaseException | None = None
        try:
            if mode == "sync":
                with deltastream.Client(base_url=base_url, api_key=KEY, max_retries=0) as c:
                    c.chat.completions.create(model="m", messages=STORY, stream=True)
            else:
                async with deltastream.AsyncClient(
                    base_url=base_url, api_key=KEY, max_retries=0
                ) as ac:
                    await ac.chat.completions.create(model="m", messages=STORY, stream=True)
        except deltastream.native.APIConnectionError as exc:
            failure = exc
        assert failure is not None, "a self-signed certificate was accepted"
        assert _is_verification_failure(failure), repr(failure)
        assert seen == []  # no request (and no key) went to the unverified server

        # The same server works once its certificate is trusted: the failure above was
        # the verification, nothing else.
        trusted = ssl.create_default_context(cafile=str(cert))
        http = httpx2.Client(verify=trusted)
        with deltastream.Client(
            base_url=base_url, api_key=KEY, max_retries=0, http_client=http
        ) as client:
            final = client.chat.completions.create(
                model="m", messages=STORY, stream=True
            ).get_final_completion()
        http.close()
        assert final.choices[0].message.content == "moved"
        assert seen[0]["authorization"] == f"Bearer {KEY}"
