"""Soak: many streams with random faults; no leaked descriptors, no memory growth, and
no event lost or duplicated.

The scripted server runs in a child process, so that this process's descriptors
(``/proc/self/fd``) and RSS are the client's alone. Each stream gets a random fault
(``X-Deltastream-Fault``, see docs/faults.md) and a random write size
(``X-Deltastream-Chunk-Size``):

- a stream that completes must carry exactly the events of the same request without
  faults (the scripted backend is deterministic): same count, same text, same finish
  reason and usage;
- a stream that fails must fail with the error its fault calls for, after no more
  events than the fault allows, with ``.partial`` holding exactly what was delivered.

The short version runs in ``make test``; ``make soak`` runs the full one (20,000
sequential streams, 2,000 concurrent) by setting ``DELTASTREAM_SOAK_SEQUENTIAL`` and
``DELTASTREAM_SOAK_CONCURRENT``. ``DELTASTREAM_SOAK_SEED`` replays one run.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

import deltastream
import deltastream.native
from deltastream.engine.types import ChatCompletion, ChatCompletionChunk

SEQUENTIAL = int(os.environ.get("DELTASTREAM_SOAK_SEQUENTIAL", "600"))
CONCURRENT = int(os.environ.get("DELTASTREAM_SOAK_CONCURRENT", "200"))
SEED = int(os.environ.get("DELTASTREAM_SOAK_SEED", str(random.randrange(2**32))))
RSS_BOUND_MIB = 24  # growth allowed after warm-up, whatever the number of streams

PROMPTS = ["hi", "Count to 3", "Write a story about a robot.", "Tell me about the sea."]
FAULT = "X-Deltastream-Fault"
CHUNK_SIZE = "X-Deltastream-Chunk-Size"

SERVER = """
import sys
from deltastream.server import create_app, run_in_thread
with run_in_thread(create_app("scripted")) as url:
    print(url, flush=True)
    sys.stdin.read()
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def child_server() -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), url
        yield url
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


# -- what each stream should give -------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    contents: tuple[str, ...]  # the content of each event, in order
    final: ChatCompletion


@dataclass(frozen=True)
class Case:
    prompt: str
    fault: str | None
    kind: str  # the fault's name, "none" or "status"
    after: int  # the N of "...-after=N"
    chunk_size: int | None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.fault is not None:
            headers[FAULT] = self.fault
        if self.chunk_size is not None:
            headers[CHUNK_SIZE] = str(self.chunk_size)
        return headers


def make_case(rng: random.Random, number: int, expected: dict[str, Expected]) -> Case:
    prompt = rng.choice(PROMPTS)
    events = len(expected[prompt].contents)
    after = rng.randrange(0, events + 3)  # sometimes past the end: no fault at all
    kind = rng.choice(
        ["none", "drop", "reset", "stall", "error", "garbage", "no-done", "status", "status"]
    )
    fault = {
        "none": None,
        "drop": f"drop-after={after}",
        "reset": f"reset-after={after}",
        "stall": f"stall-after={after}:0.002",
        "error": f"error-after={after}",
        "garbage": f"garbage-after={after}",
        "no-done": "no-done",
        "status": f"status={rng.choice([429, 500, 503])}; times=1; retry-after-ms=1; "
        f"key=soak-{SEED}-{number}",
    }[kind]
    # Writes of 1 byte are slow on the server's side: only for the short replies.
    sizes = [None, None, 13, 64, 4096] + ([1, 1] if events < 20 else [])
    chunk_size = rng.choice(sizes)
    return Case(prompt, fault, kind, after, chunk_size)


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def contents(chunks: list[ChatCompletionChunk]) -> tuple[str, ...]:
    return tuple((c.choices[0].delta.content or "") if c.choices else "" for c in chunks)


def expectations(base_url: str) -> dict[str, Expected]:
    result = {}
    with deltastream.Client(base_url=base_url, api_key="k", max_retries=0) as client:
        for prompt in PROMPTS:
            with client.chat.completions.create(
                model="m",
                messages=messages(prompt),
                stream=True,
                stream_options={"include_usage": True},
            ) as stream:
                chunks = list(stream)
            result[prompt] = Expected(contents(chunks), stream.current_snapshot)
    return result


def check(
    case: Case,
    expected: Expected,
    chunks: list[ChatCompletionChunk],
    final: ChatCompletion | None,
    error: deltastream.native.APIError | None,
) -> None:
    events = len(expected.contents)
    got = contents(chunks)
    fails = case.kind == "no-done" or (
        case.kind in ("drop", "reset", "error", "garbage") and case.after <= events
    )
    if case.kind == "reset" and case.after == events + 1 and error is not None:
        # Reset right after [DONE] (the server counts it as an event): the reset may
        # discard what the kernel already had, [DONE] included: a truncated stream.
        fails = True
    if not fails:
        assert error is None, (case, repr(error))
        assert final is not None
        # Nothing lost, nothing duplicated: the same events as without the fault.
        assert got == expected.contents, case
        assert final.choices == expected.final.choices, case
        assert final.usage == expected.final.usage, case
        return
    assert error is not None, case
    want: type[deltastream.native.APIError] = {
        "drop": deltastream.native.APIConnectionError,
        "reset": deltastream.native.APIConnectionError,
        "error": deltastream.native.APIStreamError,
        "garbage": deltastream.native.StreamDecodeError,
        "no-done": deltastream.native.StreamTruncatedError,
    }[case.kind]
    assert isinstance(error, want), (case, repr(error))
    received = error.events_received
    # Known bug (see test_differential.py::test_chunks_read_with_a_bad_event_are_delivered):
    # events decoded in the same read as the bad one are in .partial but never yielded.
    assert len(chunks) <= received, case
    assert got == expected.contents[: len(chunks)], case
    if case.kind == "reset":
        # A reset may discard bytes the kernel already had: fewer events, never more.
        assert received <= min(case.after, events), case
    elif case.kind != "no-done":
        assert received == case.after, case
    else:
        assert received == events, case
    partial = error.partial
    assert isinstance(partial, ChatCompletion)
    text = "".join(expected.contents[:received])
    content = partial.choices[0].message.content if partial.choices else None
    assert content == (text if received else None), case


# -- measuring --------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def server_stats(base_url: str) -> dict[str, Any]:
    root = base_url.removesuffix("/v1")
    with httpx2.Client() as http:
        result: dict[str, Any] = http.get(f"{root}/_deltastream/stats").json()
    return result


def wait_for_server_idle(base_url: str, within: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        stats = server_stats(base_url)
        # Less one: the stats request's own connection.
        if stats["open_connections"] - 1 == 0 and stats["active_streams"] == 0:
            return stats
        if time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


# -- the runs ---------------------------------------------------------------------------


def run_sequential(
    base_url: str, rng: random.Random, count: int, expected: dict[str, Expected], start: int
) -> None:
    with deltastream.Client(base_url=base_url, api_key="k", max_retries=2) as client:
        for number in range(start, start + count):
            case = make_case(rng, number, expected)
            chunks: list[ChatCompletionChunk] = []
            final = error = None
            try:
                with client.chat.completions.create(
                    model="m",
                    messages=messages(case.prompt),
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_headers=case.headers(),
                ) as stream:
                    for chunk in stream:
                        chunks.append(chunk)
                    final = stream.current_snapshot
            except deltastream.native.APIError as exc:
                error = exc
            check(case, expected[case.prompt], chunks, final, error)


async def run_concurrent(
    base_url: str, rng: random.Random, count: int, expected: dict[str, Expected], start: int
) -> None:
    cases = [make_case(rng, number, expected) for number in range(start, start + count)]
    async with deltastream.AsyncClient(base_url=base_url, api_key="k", max_retries=2) as client:

        async def one(case: Case) -> None:
            chunks: list[ChatCompletionChunk] = []
            final = error = None
            try:
                stream = await client.chat.completions.create(
                    model="m",
                    messages=messages(case.prompt),
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_headers=case.headers(),
                )
                async with stream:
                    async for chunk in stream:
                        chunks.append(chunk)
                    final = stream.current_snapshot
            except deltastream.native.APIError as exc:
                error = exc
            check(case, expected[case.prompt], chunks, final, error)

        await asyncio.gather(*(one(case) for case in cases))


def test_soak_leaks_nothing_and_loses_nothing(child_server: str) -> None:
    print(f"soak seed {SEED}: {SEQUENTIAL} sequential, {CONCURRENT} concurrent")
    rng = random.Random(SEED)
    expected = expectations(child_server)

    # Warm up both paths (imports, pools, caches, the allocator) before the baseline;
    # the concurrent one at full size, since its peak sets the allocator's high water.
    run_sequential(child_server, rng, 150, expected, 0)
    asyncio.run(run_concurrent(child_server, rng, CONCURRENT, expected, 150))
    wait_for_server_idle(child_server)
    gc.collect()
    fds, rss = open_fds(), rss_mib()
    start = 150 + CONCURRENT

    started = time.monotonic()
    run_sequential(child_server, rng, SEQUENTIAL, expected, start)
    gc.collect()
    assert open_fds() <= fds, f"sequential streams leaked descriptors: {fds} -> {open_fds()}"
    sequential_growth = rss_mib() - rss
    assert sequential_growth < RSS_BOUND_MIB, f"RSS grew by {sequential_growth:.1f} MiB"

    asyncio.run(run_concurrent(child_server, rng, CONCURRENT, expected, start + SEQUENTIAL))
    elapsed = time.monotonic() - started
    gc.collect()
    assert open_fds() <= fds, f"concurrent streams leaked descriptors: {fds} -> {open_fds()}"
    growth = rss_mib() - rss
    assert growth < RSS_BOUND_MIB, f"RSS grew by {growth:.1f} MiB"
    stats = wait_for_server_idle(child_server)
    assert stats["open_connections"] - 1 == 0, stats
    assert stats["active_streams"] == 0, stats
    print(
        f"soak: {elapsed:.1f} s, RSS growth {sequential_growth:.1f} MiB after the sequential "
        f"streams, {growth:.1f} MiB after the concurrent ones, server {stats}"
    )
