"""The async client end to end under uvloop, a common production event loop (uvicorn
picks it when installed). Its transports are not asyncio's classes and its sockets
refuse ``shutdown()``: what asyncio lets through must not be assumed. Every test here
runs on uvloop only (see conftest); test_live covers the same paths on asyncio."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream import Timeout
from tests.test_live import FAULT, STORY, stats, wait_for_open_connections


async def story(client: deltastream.AsyncClient, fault: str | None = None) -> str:
    headers = {FAULT: fault} if fault else None
    stream = await client.chat.completions.create(
        model="m", messages=STORY, stream=True, extra_headers=headers
    )
    async with stream:
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    final = stream.current_snapshot
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "".join(parts)
    return "".join(parts)


async def test_the_loop_is_uvloop() -> None:
    import uvloop

    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


async def test_many_streams_at_once_all_complete(server_url: str) -> None:
    async with deltastream.AsyncClient(base_url=server_url) as client:
        texts = await asyncio.gather(*(story(client) for _ in range(200)))
    assert len(set(texts)) == 1
    assert "robot" in texts[0].lower()


async def test_sequential_streams_reuse_one_connection(private_url: str) -> None:
    async with deltastream.AsyncClient(base_url=private_url) as client:
        for _ in range(3):
            await story(client)
    seen = await asyncio.to_thread(stats, private_url)
    assert seen["total_streams"] == 3
    assert seen["total_connections"] == 2  # ours, and the one that asked for the stats


async def test_closing_the_client_closes_its_connections(private_url: str) -> None:
    async with deltastream.AsyncClient(base_url=private_url) as client:
        await asyncio.gather(*(story(client) for _ in range(20)))
    assert await asyncio.to_thread(wait_for_open_connections, private_url, 0) == 0


@pytest.mark.parametrize("own_transport", [True, False], ids=["own", "httpx2"])
async def test_an_idle_deadline_ends_a_stalled_stream(server_url: str, own_transport: bool) -> None:
    """The watchdog shuts the socket down from its thread: through our transport's body,
    or (with a user's httpx2 transport) through uvloop's stand-in socket."""
    http_client = None if own_transport else httpx2.AsyncClient()
    async with deltastream.AsyncClient(
        base_url=server_url, http_client=http_client, timeout=Timeout(idle=0.4), max_retries=0
    ) as client:
        started = time.monotonic()
        with pytest.raises(deltastream.native.APITimeoutError) as caught:
            await story(client, fault="stall-after=3:30")
    assert time.monotonic() - started < 5  # nowhere near the server's 30 s stall
    assert caught.value.deadline == "idle"
    assert caught.value.events_received == 3
    assert caught.value.partial.choices[0].message.content


async def test_cancel_from_another_thread_ends_a_waiting_read(server_url: str) -> None:
    async with deltastream.AsyncClient(base_url=server_url, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="m", messages=STORY, stream=True, extra_headers={FAULT: "stall-after=2:30"}
        )
        async with stream:
            loop = asyncio.get_running_loop()
            loop.call_later(0.2, lambda: loop.run_in_executor(None, stream.cancel))
            started = time.monotonic()
            received = [chunk async for chunk in stream]
        assert time.monotonic() - started < 5
        assert len(received) == 2


_LOOPS_IN_TURN = """
import asyncio, sys, uvloop, deltastream
url = sys.argv[1]
messages = [{"role": "user", "content": "Hello!"}]
native = deltastream.AsyncClient(base_url=url)
dropin = deltastream.AsyncOpenAI(base_url=url, api_key="sk-test")

async def both():
    texts = []
    for client in (native, dropin):
        stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
        texts.append("".join([c.choices[0].delta.content or "" async for c in stream if c.choices]))
    return texts

first = uvloop.run(both())
assert first[0] and first[0] == first[1], first
for run in (asyncio.run, uvloop.run, uvloop.run):
    assert run(both()) == first
print("ok")
"""


def test_a_client_moves_on_from_a_closed_uvloop_loop(server_url: str) -> None:
    """A loop that closes takes the client's connections with it; the next loop's first
    request opens a new one (it raised ValueError: negative file descriptor, from
    shutting down a socket uvloop had closed). In a process of its own: each
    ``uvloop.run`` makes and closes a loop, which pytest's own loop would get in the
    way of."""
    ran = subprocess.run(
        [sys.executable, "-c", _LOOPS_IN_TURN, server_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == "ok"
