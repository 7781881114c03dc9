"""One measurement in a fresh process: ``python -m bench.worker '<job as JSON>'``.

A job names a client, a scenario and its parameters; the worker prints one JSON line
with the figures. A fresh process per job means peak RSS and CPU time belong to that
client and that scenario alone. CPU time is ``time.process_time()`` (every thread of
the process: deltastream's watchdog thread counts) around the streaming loop only.

Scenarios:

- ``stream``: ``streams`` sequential streams of ``n`` chunks on one client. The
  consumer is plain iteration, or for deltastream ``final`` (``get_final_completion``)
  or ``text`` (``text_deltas``). ``framing="coalesced"`` asks the server for one HTTP
  chunk per write instead of one per event.
- ``ttfc``: ``streams`` sequential small streams; time from ``create`` to the first
  chunk on the warm connection (the first stream, which connects, is left out).
- ``concurrent``: (async clients) ``streams`` streams at once, paced at ``rate``
  chunks/s by the server: latency the client adds (arrival minus the send time in
  each chunk's id), CPU share, memory per stream, and errors by kind. ``ramp``
  spreads the starts evenly over that many seconds instead of one instant;
  ``loop="uvloop"`` runs it (and ``stream``, for async clients) on uvloop instead of
  asyncio's own loop.
- ``new_client``: build a client and close it, ``clients`` times after a first one;
  the median wall time.
- ``alternate``: several ``clients`` in this one process, each on one stream of ``n``
  chunks (or ``n_of[client]``), taking turns for ``rounds`` rounds (each round starts
  one client further on, so none always runs first). Per client and round: CPU µs per
  chunk. The clients' ratios within a round compare them on the same machine speed,
  which on a shared machine moves more between fresh processes than within a round.
- ``ttfc_alternate``: warm time to first chunk with the ``clients`` taking turns stream
  by stream (sync ones in turn, async ones in one event loop), ``streams`` each per
  round after a warm-up: each client's median per round. With ``measure="cpu"``, the
  process's CPU time for each whole stream instead (``us_per_request``).
"""

from __future__ import annotations

import array
import asyncio
import gc
import json
import os
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .clients import CLIENTS, AsyncBenchClient, ClientSpec, SyncBenchClient
from .payload import send_time_ns
from .server import raise_fd_limit

__all__ = ["main", "run_job"]

Result = dict[str, Any]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


# -- sequential streams -----------------------------------------------------------------


def _consume_sync(stream: Any, consumer: str) -> int:
    count = 0
    if consumer == "final":
        stream.get_final_completion()
        return int(stream.events_received)
    if consumer == "text":
        for _ in stream.text_deltas():
            count += 1
        return int(stream.events_received)
    for _ in stream:
        count += 1
    return count


async def _consume_async(stream: Any, consumer: str) -> int:
    count = 0
    if consumer == "final":
        await stream.get_final_completion()
        return int(stream.events_received)
    if consumer == "text":
        async for _ in stream.text_deltas():
            count += 1
        return int(stream.events_received)
    async for _ in stream:
        count += 1
    return count


def _sequential_sync(
    client: SyncBenchClient, streams: int, n: int, consumer: str, headers: dict[str, str]
) -> int:
    total = 0
    for _ in range(streams):
        with client.stream(n, headers) as stream:
            total += _consume_sync(stream, consumer)
    return total


async def _sequential_async(
    client: AsyncBenchClient, streams: int, n: int, consumer: str, headers: dict[str, str]
) -> int:
    total = 0
    for _ in range(streams):
        async with client.stream(n, headers) as stream:
            total += await _consume_async(stream, consumer)
    return total


def _runner(loop: str) -> asyncio.Runner:
    """An event loop runner: asyncio's own loop, or ``"uvloop"``."""
    if loop == "uvloop":
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    if loop != "asyncio":
        raise ValueError(f"unknown event loop {loop!r}")
    return asyncio.Runner()


def scenario_stream(
    spec: ClientSpec,
    port: int,
    streams: int,
    n: int,
    consumer: str = "iter",
    framing: str = "per-event",
    loop: str = "asyncio",
) -> Result:
    headers = {"x-bench-framing": framing}
    gc.collect()
    if spec.kind == "sync":
        client = spec.make(port)
        cpu, wall = time.process_time(), time.perf_counter()
        received = _sequential_sync(client, streams, n, consumer, headers)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        client.close()
    else:

        async def main() -> tuple[float, float, int]:
            client = spec.make(port)
            cpu, wall = time.process_time(), time.perf_counter()
            received = await _sequential_async(client, streams, n, consumer, headers)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            await client.aclose()
            return cpu, wall, received

        with _runner(loop) as runner:
            cpu, wall, received = runner.run(main())
    expected = streams * n
    if spec.counts and received != expected:
        raise RuntimeError(f"{spec.name}: received {received} chunks, expected {expected}")
    return {
        "chunks": expected,
        "cpu_s": cpu,
        "wall_s": wall,
        "us_per_chunk": cpu / expected * 1e6,
        "chunks_per_s": expected / wall,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- time to first chunk ------------------------------------------------------------------


def _ttfc_sync(client: SyncBenchClient, streams: int, n: int) -> list[float]:
    times = []
    for _ in range(streams):
        start = time.perf_counter()
        with client.stream(n) as stream:
            chunks = iter(stream)
            next(chunks)
            times.append(time.perf_counter() - start)
            for _ in chunks:
                pass
    return times


async def _ttfc_async(client: AsyncBenchClient, streams: int, n: int) -> list[float]:
    times = []
    for _ in range(streams):
        start = time.perf_counter()
        async with client.stream(n) as stream:
            chunks = aiter(stream)
            await anext(chunks)
            times.append(time.perf_counter() - start)
            async for _ in chunks:
                pass
    return times


def _request_cpu_sync(client: SyncBenchClient, streams: int, n: int) -> list[float]:
    times = []
    for _ in range(streams):
        start = time.process_time()
        with client.stream(n) as stream:
            for _ in stream:
                pass
        times.append(time.process_time() - start)
    return times


async def _request_cpu_async(client: AsyncBenchClient, streams: int, n: int) -> list[float]:
    times = []
    for _ in range(streams):
        start = time.process_time()
        async with client.stream(n) as stream:
            async for _ in stream:
                pass
        times.append(time.process_time() - start)
    return times


# measure -> (sync timer, async timer, the figure's key, seconds to its unit)
_TURN_MEASURES: dict[str, tuple[Any, Any, str, float]] = {
    "ttfc": (_ttfc_sync, _ttfc_async, "ttfc_ms", 1e3),
    "cpu": (_request_cpu_sync, _request_cpu_async, "us_per_request", 1e6),
}


def scenario_ttfc(spec: ClientSpec, port: int, streams: int, n: int) -> Result:
    if spec.kind == "sync":
        client = spec.make(port)
        times = _ttfc_sync(client, streams, n)
        client.close()
    else:

        async def main() -> list[float]:
            client = spec.make(port)
            times = await _ttfc_async(client, streams, n)
            await client.aclose()
            return times

        times = asyncio.run(main())
    warm = sorted(times[1:])
    return {
        "streams": streams,
        "cold_ttfc_ms": times[0] * 1e3,
        "ttfc_ms": percentile(warm, 0.5) * 1e3,
        "ttfc_p99_ms": percentile(warm, 0.99) * 1e3,
    }


def _make_all(runner: asyncio.Runner, specs: list[ClientSpec], port: int) -> dict[str, Any]:
    """Each client by name: a SyncBenchClient, or an AsyncBenchClient made on the loop
    that will use it."""
    return {
        spec.name: spec.make(port) if spec.kind == "sync" else runner.run(_amake(spec, port))
        for spec in specs
    }


def _close_all(runner: asyncio.Runner, specs: list[ClientSpec], made: dict[str, Any]) -> None:
    for spec in specs:
        client = made[spec.name]
        if spec.kind == "sync":
            client.close()
        else:
            runner.run(client.aclose())


def _rotated(specs: list[ClientSpec], shift: int) -> list[ClientSpec]:
    """``specs`` starting ``shift`` places on, so no client always goes first."""
    shift %= len(specs)
    return specs[shift:] + specs[:shift]


def scenario_ttfc_alternate(
    clients: list[str],
    port: int,
    rounds: int,
    streams: int,
    n: int,
    warmup: int = 20,
    measure: str = "ttfc",
) -> Result:
    """Warm time to first chunk (or, ``measure="cpu"``, CPU time per stream) with the
    clients taking turns stream by stream, sync ones among themselves and async ones in
    one event loop: each round's median per client, so a ratio within a round compares
    clients at one machine speed."""
    timer, atimer, key, unit = _TURN_MEASURES[measure]
    specs = [CLIENTS[name] for name in clients]
    sync = [spec for spec in specs if spec.kind == "sync"]
    async_ = [spec for spec in specs if spec.kind != "sync"]
    medians: dict[str, list[float]] = {spec.name: [] for spec in specs}

    def sync_turns(count: int, order: list[ClientSpec]) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {spec.name: [] for spec in order}
        for _ in range(count):
            for spec in order:
                times[spec.name] += timer(made[spec.name], 1, n)
        return times

    with asyncio.Runner() as runner:
        made = _make_all(runner, specs, port)

        async def async_turns(count: int, order: list[ClientSpec]) -> dict[str, list[float]]:
            times: dict[str, list[float]] = {spec.name: [] for spec in order}
            for _ in range(count):
                for spec in order:
                    times[spec.name] += await atimer(made[spec.name], 1, n)
            return times

        for round_ in range(-1, rounds):  # round -1: the warm-up, not kept
            count = warmup if round_ < 0 else streams
            shift = max(round_, 0)
            found: dict[str, list[float]] = {}
            if sync:
                found |= sync_turns(count, _rotated(sync, shift))
            if async_:
                found |= runner.run(async_turns(count, _rotated(async_, shift)))
            if round_ >= 0:
                for name, times in found.items():
                    medians[name].append(statistics.median(times) * unit)
        _close_all(runner, specs, made)
    return {
        "rounds": rounds,
        "clients": {name: {key: values} for name, values in medians.items()},
    }


# -- concurrent paced streams -------------------------------------------------------------


class _LoopWatch:
    """CPU time every 0.25 s (for the CPU share in the steady middle of the run), and
    the event loop's lag: how late a 10 ms sleep wakes up."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.lags: list[float] = []

    async def run(self) -> None:
        next_sample = 0.0
        while True:
            now = time.perf_counter()
            if now >= next_sample:
                self.samples.append((now, time.process_time()))
                next_sample = now + 0.25
            await asyncio.sleep(0.01)
            self.lags.append(time.perf_counter() - now - 0.01)

    def share(self, start: float, end: float) -> float:
        """CPU share (0-1) over the middle half of [start, end]."""
        lo, hi = start + (end - start) / 4, end - (end - start) / 4
        window = [s for s in self.samples if lo <= s[0] <= hi]
        if len(window) < 2:
            return float("nan")
        (w0, c0), (w1, c1) = window[0], window[-1]
        return (c1 - c0) / (w1 - w0)


class _GCWatch:
    """Time spent in the garbage collector, and how many full (generation 2) passes."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        if info["generation"] == 2:
            self.full += 1


async def _concurrent(
    spec: ClientSpec,
    port: int,
    streams: int,
    n: int,
    rate: float,
    deadline: float,
    ramp: float = 0.0,
) -> Result:
    client: AsyncBenchClient = spec.make(port)
    headers = {"x-bench-rate": str(rate)}
    latencies = array.array("q", bytes(8 * streams * n))  # allocated before the baseline
    firsts = array.array("q", bytes(8 * streams))  # each stream's first chunk, also above
    filled = started = completed = 0
    errors: Counter[str] = Counter()
    chunk_id: Callable[[Any], str] = spec.chunk_id

    async def one(delay: float) -> None:
        nonlocal filled, started, completed
        if delay:
            await asyncio.sleep(delay)
        try:
            async with client.stream(n, headers) as stream:
                first = True
                async for chunk in stream:
                    latency = time.monotonic_ns() - send_time_ns(chunk_id(chunk))
                    if first:
                        firsts[started] = latency
                        started += 1
                        first = False
                    else:
                        latencies[filled] = latency
                        filled += 1
            completed += 1
        except Exception as exc:
            errors[_kind(exc)] += 1

    gc.collect()
    base_rss = peak_rss_mb()
    collector = _GCWatch()
    gc.callbacks.append(collector.callback)
    watch = _LoopWatch()
    watching = asyncio.create_task(watch.run())
    cpu, start = time.process_time(), time.perf_counter()
    tasks = [asyncio.create_task(one(ramp * i / streams)) for i in range(streams)]
    _done, pending = await asyncio.wait(tasks, timeout=deadline)
    cpu, end = time.process_time() - cpu, time.perf_counter()
    gc.callbacks.remove(collector.callback)
    peak_rss = peak_rss_mb()
    watching.cancel()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    await _quietly(client.aclose())
    later = sorted(latencies[:filled])
    first_values = sorted(firsts[:started])
    values = sorted([*later, *first_values])
    lags = sorted(watch.lags)
    return {
        "streams": streams,
        "completed": completed,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "unfinished": len(pending),
        "chunks": filled + started,
        "wall_s": end - start,
        "cpu_pct": cpu / (end - start) * 100,
        "steady_cpu_pct": watch.share(start, end) * 100,
        "latency_p50_ms": percentile(values, 0.5) / 1e6,
        "latency_p99_ms": percentile(values, 0.99) / 1e6,
        "first_chunk_p99_ms": percentile(first_values, 0.99) / 1e6,
        "later_p50_ms": percentile(later, 0.5) / 1e6,
        "later_p99_ms": percentile(later, 0.99) / 1e6,
        "gc_full_collections": collector.full,
        "gc_s": collector.seconds,
        "loop_lag_p50_ms": percentile(lags, 0.5) * 1e3,
        "loop_lag_p99_ms": percentile(lags, 0.99) * 1e3,
        "peak_rss_mb": peak_rss,
        "kb_per_stream": (peak_rss - base_rss) * 1024 / streams,
    }


def _kind(exc: Exception) -> str:
    """The error's class, with the deadline that passed when it names one."""
    deadline = getattr(exc, "deadline", None)
    name = type(exc).__name__
    return f"{name} ({deadline})" if isinstance(deadline, str) else name


async def _quietly(closing: Awaitable[None]) -> None:
    try:
        await asyncio.wait_for(closing, 10)
    except Exception as exc:
        print(f"closing the client failed: {exc!r}", file=sys.stderr)


def scenario_concurrent(
    spec: ClientSpec, port: int, loop: str = "asyncio", **params: Any
) -> Result:
    if spec.kind != "async":
        raise ValueError("the concurrent scenario is for async clients")
    with _runner(loop) as runner:
        return runner.run(_concurrent(spec, port, **params))


# -- clients taking turns in one process ----------------------------------------------------


async def _amake(spec: ClientSpec, port: int) -> AsyncBenchClient:
    client: AsyncBenchClient = spec.make(port)  # on the loop that will use it
    return client


async def _timed_async(client: AsyncBenchClient, n: int, headers: dict[str, str]) -> Result:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    received = await _sequential_async(client, 1, n, "iter", headers)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"received": received, "cpu_s": cpu, "wall_s": wall}


def _timed_sync(client: SyncBenchClient, n: int, headers: dict[str, str]) -> Result:
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    received = _sequential_sync(client, 1, n, "iter", headers)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"received": received, "cpu_s": cpu, "wall_s": wall}


def scenario_alternate(
    clients: list[str],
    port: int,
    n: int,
    rounds: int,
    n_of: dict[str, int] | None = None,
    warmup: int = 1000,
    loop: str = "asyncio",
) -> Result:
    """Each client in turn, ``rounds`` times, after one short warm-up stream each (it
    connects and runs every first-call path); async clients on ``loop``."""
    specs = [CLIENTS[name] for name in clients]
    sizes = {spec.name: (n_of or {}).get(spec.name, n) for spec in specs}
    headers = {"x-bench-framing": "per-event"}
    per_client: dict[str, dict[str, Any]] = {
        spec.name: {"chunks": sizes[spec.name], "us_per_chunk": [], "wall_s": []} for spec in specs
    }
    with _runner(loop) as runner:
        made = _make_all(runner, specs, port)

        def once(spec: ClientSpec, chunks: int) -> Result:
            client = made[spec.name]
            if spec.kind == "sync":
                result = _timed_sync(client, chunks, headers)
            else:
                result = runner.run(_timed_async(client, chunks, headers))
            if spec.counts and result["received"] != chunks:
                raise RuntimeError(f"{spec.name}: received {result['received']} of {chunks}")
            return result

        for spec in specs:
            once(spec, warmup)
        for round_ in range(rounds):
            for spec in _rotated(specs, round_):
                chunks = sizes[spec.name]
                result = once(spec, chunks)
                per_client[spec.name]["us_per_chunk"].append(result["cpu_s"] / chunks * 1e6)
                per_client[spec.name]["wall_s"].append(result["wall_s"])
        _close_all(runner, specs, made)
    return {"rounds": rounds, "clients": per_client, "peak_rss_mb": peak_rss_mb()}


# -- entry point ------------------------------------------------------------------------------

# -- the partial result's memory ---------------------------------------------------------


def scenario_partial(spec: ClientSpec, port: int, n: int) -> Result:
    """One stream of ``n`` one-word deltas, read to its end and kept as the partial
    result (the snapshot an error would carry): how much the process grew, against the
    size of the text it holds. Sync clients that accumulate only."""
    client = spec.make(port)
    with client.stream(10) as warm:  # imports, pools and caches: not the partial's
        for _ in warm:
            pass
    gc.collect()
    before = peak_rss_mb()
    with client.stream(n) as stream:
        for _ in stream:
            pass
        snapshot: Any = stream.current_snapshot
    grown = peak_rss_mb() - before
    text = snapshot.choices[0].message.content or ""
    client.close()
    # Python holds text with any character past U+FFFF at 4 bytes a character (the
    # payload has emoji): the string's own size is the fair measure, not its UTF-8.
    held = sys.getsizeof(text) / 1e6
    return {
        "chunks": n,
        "text_utf8_mb": len(text.encode()) / 1e6,
        "text_str_mb": held,
        "grown_mb": grown,
        "grown_over_text": grown / held,
        "bytes_per_delta": grown * 1e6 / n,
    }


# -- a new client ----------------------------------------------------------------------------


def scenario_new_client(spec: ClientSpec, port: int, clients: int) -> Result:
    """Wall time to build a client and close it again, ``clients`` times after one
    (which imports the library): what an application pays per client it makes, say one
    per request or per tenant. Nothing is sent."""

    def made_sync() -> float:
        start = time.perf_counter()
        spec.make(port).close()
        return time.perf_counter() - start

    async def made_async() -> float:
        start = time.perf_counter()
        client: AsyncBenchClient = spec.make(port)
        await client.aclose()
        return time.perf_counter() - start

    async def times_async() -> list[float]:
        return [await made_async() for _ in range(clients + 1)]

    if spec.kind == "sync":
        times = [made_sync() for _ in range(clients + 1)]
    else:
        times = asyncio.run(times_async())
    warm = sorted(times[1:])
    return {
        "made": clients,
        "first_ms": times[0] * 1e3,
        "new_client_ms": percentile(warm, 0.5) * 1e3,
        "new_client_p90_ms": percentile(warm, 0.9) * 1e3,
    }


SCENARIOS: dict[str, Callable[..., Result]] = {
    "stream": scenario_stream,
    "ttfc": scenario_ttfc,
    "concurrent": scenario_concurrent,
    "partial": scenario_partial,
    "new_client": scenario_new_client,
}


def run_job(job: dict[str, Any]) -> Result:
    params = dict(job)
    name = params.pop("scenario")
    if name == "alternate":  # several clients: named in the job's "clients"
        return scenario_alternate(**params)
    if name == "ttfc_alternate":
        return scenario_ttfc_alternate(**params)
    spec = CLIENTS[params.pop("client")]
    return SCENARIOS[name](spec, **params)


def main() -> None:
    raise_fd_limit()
    job = json.loads(sys.argv[1])
    cpu = job.pop("cpu", None)
    if cpu is not None:
        os.sched_setaffinity(0, {int(cpu)})
    print(json.dumps(run_job(job)), flush=True)


if __name__ == "__main__":
    main()
