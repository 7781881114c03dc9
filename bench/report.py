"""docs/benchmarks.md from the results of a run (and the plot beside it).

Everything in the document is computed from ``bench/results/latest.json``; the prose
of "Where the time goes" is written around the measured figures, so a run on other
code or another machine rewrites it with its own numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from . import alternation, findings, targets
from .clients import (
    DROPIN_ASYNC,
    DROPIN_SYNC,
    FLOOR_ASYNC,
    FLOOR_SYNC,
    HTTPX2_ASYNC,
    HTTPX2_SYNC,
    NATIVE_ASYNC,
    NATIVE_NO_RETRIES,
    NATIVE_SYNC,
    OPENAI_ASYNC,
    OPENAI_SYNC,
)
from .figures import DASH, RANGE, TIMES, fmt, median, per_run, ratio, runs, table
from .payload import MIN_CHUNKS
from .plot import plot

__all__ = ["SEQUENTIAL", "render", "write"]

SEQUENTIAL = [
    NATIVE_SYNC,
    NATIVE_ASYNC,
    DROPIN_SYNC,
    DROPIN_ASYNC,
    OPENAI_SYNC,
    OPENAI_ASYNC,
    HTTPX2_SYNC,
    HTTPX2_ASYNC,
    FLOOR_SYNC,
    FLOOR_ASYNC,
]
ASYNC = [c for c in SEQUENTIAL if c.endswith("async")]
NO_RETRIES = "deltastream async, max_retries=0"


def _openai_of(client: str) -> str:
    return OPENAI_ASYNC if client.endswith("async") else OPENAI_SYNC


def _spread(results: dict[str, Any], section: str, client: str, key: str) -> str:
    """Fastest and slowest run of one figure: how far the median could have moved."""
    values = sorted(per_run(results, section, client, key))
    if len(values) < 2:
        return DASH
    return f"{fmt(values[0], 2)} {RANGE} {fmt(values[-1], 2)}"


def _failed(results: dict[str, Any], section: str, client: str) -> str:
    errors = per_run(results, section, client, "error")
    return f"failed: {errors[0]}" if errors else "not run"


def _name(client: str) -> str:
    return f"**{client}**" if client.startswith("deltastream") else client


# -- sections -------------------------------------------------------------------------------


def _noise(results: dict[str, Any]) -> str:
    others, waited = [], 0.0
    for section in results.values():
        for entry in section.values():
            for run in entry["runs"]:
                if "other_cpu_pct" in run:
                    others.append(run["other_cpu_pct"])
                waited += run.get("waited_for_quiet_s", 0.0)
    if not others:
        return ""
    others.sort()
    return (
        f"- Other processes on the machine (this is a shared development machine) used "
        f"a median {others[len(others) // 2]:.0f}% of one core during the jobs, at most "
        f"{others[-1]:.0f}%; before each job the harness waited for them to go below "
        f"50% (up to 30 s; {waited:.0f} s in all). Jobs that ran beside a busy neighbour "
        f"are noisier, which the medians soften but do not remove." + _run_spread(results)
    )


def _run_spread(results: dict[str, Any]) -> str:
    """How far apart the same job's runs landed, in the sequential sections."""
    spreads = []
    for section in ("big", "many"):
        for entry in results.get(section, {}).values():
            values = [run["us_per_chunk"] for run in entry["runs"] if "us_per_chunk" in run]
            if len(values) > 1:
                spreads.append(max(values) / min(values) - 1)
    if not spreads:
        return ""
    spreads.sort()
    return (
        f" The slowest run of a sequential job was a median {spreads[len(spreads) // 2]:.0%} "
        f"slower than its fastest (at most {spreads[-1]:.0%}): the speed of this virtual "
        "machine varies with load outside it that no process list shows, so figures "
        "and ratios near a target can land on either side of it from one run to the next."
    )


def _machine(data: dict[str, Any]) -> str:
    m = data["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    memory = f"{m['memory_gib']:.0f} GiB" if m.get("memory_gib") else "unknown"
    modified = " (with uncommitted changes under src/)" if m.get("src_modified") else ""
    count = data["config"]["runs"]
    sections = data["config"]["sections"]
    others = [
        f"{label}: {sections[name]['runs']}"
        for name, label in (
            ("big", "the 100,000-chunk stream"),
            ("many", "the 1,000 streams of 100 chunks"),
            ("accumulation", "the accumulation consumers"),
            ("layers", "the layer measurements"),
            ("c10k", "the 10,000-stream test"),
            ("c10k busy", "the 10,000-stream test beside a busy process"),
        )
        if name in sections and sections[name]["runs"] != count
    ]
    single = f" ({'; '.join(others)})" if others else ""
    return "\n".join(
        [
            "## Machine and method",
            "",
            f"- CPU: {m['cpu_model']}, `nproc` = {m['nproc']}; memory {memory}; {m['os']}",
            f"- Python {m['python']} ({m['python_impl']}); {packages}",
            f"- deltastream at commit `{m['commit'] or 'unknown'}`{modified}; "
            f"run started {data['started']}, took {data['duration_s'] / 60:.1f} min"
            + _merged(data),
            f"- Each figure is the median of {count} run{'s' if count != 1 else ''}{single}, "
            "each run a fresh process per client and workload, so CPU time and peak RSS "
            "are that client's alone. Runs interleave the clients." + _together(sections),
            "- deltastream is measured in both its faces: **native** "
            "(`deltastream.Client`/`AsyncClient`, msgspec types, no pydantic) and "
            "**drop-in** (`deltastream.OpenAI`/`AsyncOpenAI`: openai-python's client "
            "classes whose streams run on deltastream's engine and hand out openai's own "
            "pydantic types). Both run on deltastream's own HTTP transport.",
            "- The load server (`bench/server.py`, asyncio, HTTP/1.1 keep-alive, "
            "pre-rendered realistic `chat.completion.chunk` events, one HTTP chunk per "
            "event as a server that flushes every token sends them, ~64 KB per write) runs "
            "in its own process pinned to one CPU; the client is pinned to the other.",
            "- CPU µs/chunk: `time.process_time()` (all threads of the client process) "
            "around the loop that sends the requests and iterates the chunks, divided by "
            "the chunks received. chunks/s: chunks over wall time. Peak RSS: "
            "`ru_maxrss` of the client process (interpreter and imports included).",
            "- Each client iterates the library's own stream object and counts chunks. "
            "httpx2: `client.sse(url, method='POST', json=...)` and `json.loads` per "
            "event. Raw floor (`bench/floor.py`): blocking socket, hand-written request, "
            "chunked decoding, frames split on `\\n\\n`, `msgspec.json.decode` into a "
            "small Struct; its asyncio twin uses `asyncio.open_connection`.",
            "- chunks/s is wall time and so includes waiting for the server and the "
            "loopback round trips between streams; CPU µs/chunk is the client's own cost.",
            _noise(data["results"]),
        ]
    )


def _merged(data: dict[str, Any]) -> str:
    """Sections run later (``--only ... --into``) and put into this run's results."""
    found = [
        f"{', '.join(f'“{s}”' for s in part['sections'])} at `{part['commit'] or 'unknown'}`, "
        f"started {part['started']}, {part['duration_s'] / 60:.1f} min"
        for part in data.get("merged", [])
    ]
    return ("; later, in a run of their own: " + "; ".join(found)) if found else ""


def _together(sections: dict[str, Any]) -> str:
    """The in-process alternation's plan, if it ran."""
    found = [
        sections[name]
        for group in alternation.GROUPS
        if (name := f"alternating {group}") in sections
    ]
    if not found:
        return ""
    job = found[0]
    return (
        f" The headline clients also took turns in one process ({len(found)} groups of "
        f"clients, {job['runs']} run{'s' if job['runs'] != 1 else ''} of "
        f"{job['rounds']} rounds each; see “The headline clients taking turns in one "
        "process”)."
    )


def _throughput(results: dict[str, Any], section: str, title: str) -> str:
    floor = median(results, section, FLOOR_SYNC).get("us_per_chunk")
    rows = []
    for client in SEQUENTIAL:
        m = median(results, section, client)
        if not m:
            rows.append([client, _failed(results, section, client)] + [""] * 7)
            continue
        base = median(results, section, _openai_of(client)).get("us_per_chunk")
        native = NATIVE_ASYNC if client.endswith("async") else NATIVE_SYNC
        rows.append(
            [
                _name(client),
                fmt(m["us_per_chunk"], 2),
                _spread(results, section, client, "us_per_chunk"),
                fmt(m["chunks_per_s"], 0),
                fmt(m["peak_rss_mb"]),
                ratio(m["us_per_chunk"], base),
                ratio(m["us_per_chunk"], median(results, section, native).get("us_per_chunk")),
                ratio(m["us_per_chunk"], floor),
                fmt(m.get("connections"), 0),
            ]
        )
    header = [
        "client",
        "CPU µs/chunk",
        f"fastest {RANGE} slowest run",
        "chunks/s",
        "peak RSS MB",
        "vs openai-python",
        "vs native",
        "vs raw floor",
        "TCP connections",
    ]
    return f"## {title}\n\n" + table(header, rows)


def _ttfc(results: dict[str, Any]) -> str:
    rows = []
    for client in SEQUENTIAL:
        m = median(results, "ttfc", client)
        if not m:
            rows.append([client, _failed(results, "ttfc", client), "", "", ""])
            continue
        rows.append(
            [
                client,
                fmt(m["ttfc_ms"], 3),
                fmt(m["ttfc_p99_ms"], 3),
                fmt(m["cold_ttfc_ms"], 2),
                fmt(m["connections"], 0),
            ]
        )
    header = [
        "client",
        "warm TTFC p50 ms",
        "warm TTFC p99 ms",
        "first stream (connects) ms",
        "TCP connections for 100 sequential streams",
    ]
    note = ""
    openai_sync = median(results, "ttfc", OPENAI_SYNC).get("connections", 0)
    if openai_sync > 1:
        note = (
            f"openai-python sync used {openai_sync:.0f} connections for 100 streams: its "
            "`Stream` stops reading at `data: [DONE]` and closes the response before the "
            "end of the chunked body, so httpcore2 cannot put the connection back in the "
            "pool (its async `Stream` drains the body first and reuses it). So each of its "
            "sequential streams opens a new TCP connection: its “warm” TTFC includes a "
            "connect, and so do its figures for 1,000 sequential streams."
        )
        if median(results, "ttfc", DROPIN_SYNC).get("connections") == 1:
            note += (
                " The drop-in is openai's client class, but its streams run on "
                "deltastream's engine, which reads each body to its end: one connection."
            )
    return "\n\n".join(
        [
            "## Time to first chunk and connection reuse",
            "100 sequential 10-chunk streams on one client: time from `create()` to "
            "the first chunk in hand, over the 99 streams after the first (which opens "
            "the connection). Connections are counted by the server: those that "
            "carried at least one request during the job.",
            table(header, rows),
            alternation.ttfc_note(results),
            note,
        ]
    )


def _spread_times(results: dict[str, Any], section: str, client: str, times: int) -> str:
    """Fastest and slowest run of the CPU per chunk, times ``times`` chunks."""
    values = sorted(v * times for v in per_run(results, section, client, "us_per_chunk"))
    if len(values) < 2:
        return DASH
    return f"{fmt(values[0], 0)} {RANGE} {fmt(values[-1], 0)}"


def _requests(results: dict[str, Any]) -> str:
    """A request's own cost (the shortest stream) and a new client's."""
    if not results.get("one request") and not results.get("new client"):
        return ""
    rows = []
    for client in SEQUENTIAL:
        one = median(results, "one request", client)
        made = median(results, "new client", client)
        if not one and not made:
            continue
        floor = FLOOR_ASYNC if client.endswith("async") else FLOOR_SYNC
        floor_us = median(results, "one request", floor).get("us_per_chunk")
        per_request = one.get("us_per_chunk")
        rows.append(
            [
                _name(client),
                fmt(per_request and per_request * MIN_CHUNKS, 0),
                _spread_times(results, "one request", client, MIN_CHUNKS),
                ratio(per_request, floor_us),
                fmt(made.get("new_client_ms"), 3),
                fmt(made.get("new_client_p90_ms"), 3),
            ]
        )
    header = [
        "client",
        "CPU µs per request",
        f"fastest {RANGE} slowest run",
        "vs raw floor (same mode)",
        "new client ms, p50",
        "p90",
    ]
    parts = [
        "## A request, and a new client",
        f"1,000 sequential streams of {MIN_CHUNKS} chunks each (role, finish reason, "
        "usage: the shortest stream a server sends, no content) on one client: the CPU "
        "per request (building and sending it, the response head, the stream's set-up "
        "and end, its chunks). A new client: wall time to build one and close it, over "
        "200 after the first (which imports the library), nothing sent.",
        table(header, rows),
    ]
    native = median(results, "big on uvloop", NATIVE_ASYNC).get("us_per_chunk")
    uv_floor = median(results, "big on uvloop", FLOOR_ASYNC).get("us_per_chunk")
    if native and uv_floor:
        parts.append(
            f"On uvloop, the 100,000-chunk stream: deltastream native async {native:.2f} µs "
            f"per chunk ({_spread(results, 'big on uvloop', NATIVE_ASYNC, 'us_per_chunk')}), "
            f"the async raw floor {uv_floor:.2f} µs "
            f"({_spread(results, 'big on uvloop', FLOOR_ASYNC, 'us_per_chunk')}): "
            f"{native / uv_floor:.2f}{TIMES} (fresh processes, median)."
        )
    return "\n\n".join(parts)


def _accumulation(results: dict[str, Any]) -> str:
    rows = []
    verdicts = []
    for client in (NATIVE_SYNC, NATIVE_ASYNC, DROPIN_SYNC, DROPIN_ASYNC):
        plain = median(results, "accumulation", f"{client} plain iteration").get("us_per_chunk")
        rows.append([client, "plain iteration", fmt(plain, 2), f"1.00{TIMES}"])
        for consumer in ("get_final_completion()", "text_deltas()"):
            m = median(results, "accumulation", f"{client} {consumer}")
            value = m.get("us_per_chunk")
            rows.append([client, consumer, fmt(value, 2), ratio(value, plain)])
            if value and plain:
                verdicts.append(abs(value / plain - 1) <= 0.20)
    verdict = (
        "All within 20% of plain iteration."
        if verdicts and all(verdicts)
        else "**Not all within 20% of plain iteration.**"
    )
    return "\n\n".join(
        [
            "## Accumulation consumers (deltastream)",
            "The 100,000-chunk stream consumed three ways, the three interleaved in each "
            "round of runs. deltastream's engine accumulates every chunk as it decodes "
            "it, so `get_final_completion()` only adds the final join (the drop-in then "
            "builds openai's `ChatCompletion` from it once), and `text_deltas()` one "
            "generator step per chunk. " + verdict,
            table(["client", "consumer", "CPU µs/chunk", "vs plain iteration"], rows),
        ]
    )


def _partial(results: dict[str, Any]) -> str:
    """The partial result's memory on a long stream of tiny deltas."""
    rows = []
    for client in results.get("partial", {}):
        m = median(results, "partial", client)
        if not m:
            rows.append([client, _failed(results, "partial", client), "", "", ""])
            continue
        rows.append(
            [
                client,
                f"{m['chunks']:,.0f}",
                fmt(m["text_str_mb"], 1),
                fmt(m["grown_mb"], 1),
                f"{m['grown_over_text']:.2f}{TIMES}",
            ]
        )
    if not rows:
        return ""
    header = ["client", "deltas", "text held, MB", "peak growth, MB", "growth / text"]
    return "\n\n".join(
        [
            "## The partial result's memory",
            "One stream of a million one-word deltas read to its end, its accumulated "
            "completion (the `.partial` an error would carry) then taken: how much the "
            "process's peak RSS grew, against the size of the string that holds the text "
            "(Python's: this payload's emoji make it 4 bytes a character). Deltas are "
            "joined 256 at a time; the peak is the moment the blocks are joined into the "
            "one string. One run.",
            table(header, rows),
        ]
    )


def _concurrency(results: dict[str, Any], config: dict[str, Any]) -> str:
    parts = ["## Concurrency (async clients, paced server)"]
    c1000 = config["sections"].get("c1000")
    if c1000:
        rows = []
        for client in results.get("c1000", {}):  # variant by variant, as bench/run.py ran them
            m = median(results, "c1000", client)
            if not m:
                rows.append([client, _failed(results, "c1000", client)] + [""] * 12)
                continue
            rows.append(
                [
                    client,
                    fmt(m["cpu_pct"]),
                    fmt(m["steady_cpu_pct"]),
                    fmt(m["latency_p50_ms"], 2),
                    fmt(m["latency_p99_ms"], 1),
                    fmt(m.get("later_p99_ms"), 1),
                    fmt(m.get("first_chunk_p99_ms"), 1),
                    fmt(m.get("gc_s"), 2),
                    f"{fmt(m['loop_lag_p50_ms'], 2)} / {fmt(m['loop_lag_p99_ms'], 1)}",
                    fmt(m["kb_per_stream"]),
                    fmt(m["peak_rss_mb"]),
                    fmt(m["completed"], 0),
                    fmt(m["errors"], 0),
                ]
            )
        header = [
            "client",
            "CPU % of one core (whole run)",
            "CPU % (steady middle)",
            "added latency p50 ms",
            "p99 ms",
            "p99 ms after each stream's first chunk",
            "first chunks p99 ms",
            "GC s",
            "loop lag p50 / p99 ms",
            "KB per stream",
            "peak RSS MB",
            "completed",
            "errors",
        ]
        parts += [
            f"### {c1000['streams']:,} concurrent streams at {c1000['rate']:g} chunks/s",
            f"All streams started at once, {c1000['n']} chunks each "
            f"(~{c1000['n'] / c1000['rate']:.0f} s). Added latency: arrival time in the "
            "client minus the send time the server wrote into each chunk's id (both "
            "CLOCK_MONOTONIC), over every chunk; then apart: the chunks after each "
            "stream's first, and the first chunks, which arrive while the client is "
            "still opening the other 999 streams. CPU over the whole run includes opening "
            "the connections; the steady figure is the middle half of the run. GC s: time "
            "in the garbage collector during the run. Loop lag: "
            "how late a 10 ms `asyncio.sleep` in the same loop woke up. KB per stream: "
            "growth of peak RSS over the run divided by the streams. Rows “on uvloop” "
            "run the same job on uvloop's event loop; rows “started over 1 s” start the "
            "streams evenly over the first second instead of in one instant, as a "
            "server's requests arrive.",
            table(header, rows),
        ]
    c10k = config["sections"].get("c10k")
    if c10k:
        clients = [NATIVE_ASYNC, NATIVE_NO_RETRIES, *ASYNC[1:]]
        parts += [
            f"### {c10k['streams']:,} concurrent streams at {c10k['rate']:g} chunk/s",
            f"{c10k['n']} chunks each (~{c10k['n'] / c10k['rate']:.0f} s if served at "
            f"once); streams still running {c10k['deadline']:g} s after the start are "
            "cancelled and counted as unfinished. Default client settings: openai-python "
            "pools at most 1,000 connections (httpx2 is given the same limits); "
            "deltastream (both faces, on its own transport) as many as the process may "
            "open, less 256; the raw floor opens "
            "one connection per stream. "
            f"{c10k['runs']} run.",
            _c10k_table(results, "c10k", clients, c10k),
        ]
    busy = config["sections"].get("c10k busy")
    if busy:
        parts += [
            f"### {busy['streams']:,} concurrent streams beside a busy process",
            "The same job while another process spins on the client's CPU "
            "(bench/neighbour.py), so the client has about half a core and its event loop "
            "runs seconds behind the network (loop lag p99 in the table). A connect "
            "deadline that counted loop time failed connections the kernel had made: "
            "with `max_retries=0` they were lost, with retries they were made again. "
            f"{busy['runs']} run.",
            _c10k_table(results, "c10k busy", [NATIVE_ASYNC, NATIVE_NO_RETRIES], busy),
        ]
    return "\n\n".join(parts)


def _per_stream(results: dict[str, Any]) -> str:
    """What a stream costs besides its chunks: the short streams' CPU per chunk over the
    long stream's, times the 100 chunks of a short stream."""
    found = []
    for client in (NATIVE_SYNC, DROPIN_SYNC, OPENAI_SYNC, FLOOR_SYNC):
        many = median(results, "many", client).get("us_per_chunk")
        big = median(results, "big", client).get("us_per_chunk")
        if many and big:
            found.append(f"{client} {(many - big) * 100:,.0f} µs")
    if not found:
        return ""
    return (
        "CPU per stream besides its chunks (request, response head, stream set-up and "
        "end; this table's CPU per chunk less the long stream's, times 100): "
        + ", ".join(found)
        + "."
    )


def _first_stream(results: dict[str, Any]) -> str:
    """A fresh process's first request carries one-time costs the later ones do not."""
    native = median(results, "ttfc", NATIVE_SYNC).get("cold_ttfc_ms")
    dropin = median(results, "ttfc", DROPIN_SYNC).get("cold_ttfc_ms")
    if native is None or dropin is None:
        return ""
    return (
        f" A fresh process's figure includes its client's first request: the first "
        f"stream of the time-to-first-chunk test took {dropin:.1f} ms to its first chunk "
        f"with the drop-in (openai-python's lazy imports and pydantic's schemas, built "
        f"on first use) against {native:.1f} ms with the native client. Over 100,000 "
        f"chunks that is up to {(dropin - native) / 100:.2f} µs per chunk of the "
        "drop-in's figure here; the in-process rounds follow a warm-up stream and leave "
        "it out."
    )


def _c10k_table(
    results: dict[str, Any], section: str, clients: list[str], job: dict[str, Any]
) -> str:
    rows = []
    for client in clients:
        m = median(results, section, client)
        if not m:
            rows.append([client, _failed(results, section, client)] + [""] * 8)
            continue
        kinds = runs(results, section, client)[-1].get("error_kinds") or {}
        detail = ", ".join(f"{k} {v:,}" for k, v in kinds.items()) or DASH
        rows.append(
            [
                client,
                f"{m['completed']:,.0f}",
                f"{m['errors']:,.0f}",
                detail,
                f"{m['unfinished']:,.0f}",
                fmt(m["cpu_pct"]),
                fmt(m["kb_per_stream"]),
                fmt(m["latency_p50_ms"], 1),
                fmt(m.get("loop_lag_p99_ms"), 0),
                fmt(m.get("gc_s"), 1),
            ]
        )
    header = [
        "client",
        "completed",
        "errors",
        "error kinds",
        f"unfinished after {job['deadline']:g} s",
        "CPU %",
        "KB per stream",
        "latency p50 ms",
        "loop lag p99 ms",
        "GC s",
    ]
    return table(header, rows)


def _server_note(results: dict[str, Any]) -> str:
    shares = []
    for section in ("big", "many"):
        for entry in results.get(section, {}).values():
            for run in entry["runs"]:
                if "server_cpu_s" in run and run.get("wall_s"):
                    shares.append(run["server_cpu_s"] / run["wall_s"])
    if not shares:
        return ""
    return (
        f"The load server used at most {max(shares) * 100:.0f}% of its CPU during any "
        "sequential job (median "
        f"{sorted(shares)[len(shares) // 2] * 100:.0f}%): it was not the bottleneck."
    )


def _headline(results: dict[str, Any]) -> str:
    def us(client: str) -> float | None:
        value: float | None = median(results, "big", client).get("us_per_chunk")
        return value

    native, dropin, openai, floor = (
        us(c) for c in (NATIVE_SYNC, DROPIN_SYNC, OPENAI_SYNC, FLOOR_SYNC)
    )
    if not (native and dropin and openai and floor):
        return ""
    text = (
        f"On one 100,000-chunk stream (sync, fresh processes, median) deltastream's "
        f"native client spends {native:.1f} µs of CPU per chunk, its drop-in "
        f"(`deltastream.OpenAI`, openai's types) {dropin:.1f} µs, openai-python "
        f"{openai:.1f} µs and the raw floor {floor:.1f} µs."
    )
    figures = [
        (group, top, bottom, alternation.Rounds(results, group).ratio(top, bottom))
        for group, top, bottom in (
            ("sync", OPENAI_SYNC, DROPIN_SYNC),
            ("sync", DROPIN_SYNC, NATIVE_SYNC),
            ("native", NATIVE_SYNC, FLOOR_SYNC),
        )
    ]
    shown = [
        f"{alternation.label(top, bottom)} {spread.show(2, TIMES)}"
        for _group, top, bottom, spread in figures
        if spread
    ]
    if shown:
        text += (
            " Taking turns in one process (median of the per-round ratios, lowest "
            f"{RANGE} highest round in brackets): " + "; ".join(shown) + "."
        )
    return text


def render(data: dict[str, Any]) -> str:
    results = data["results"]
    config = data["config"]
    headline = _headline(results)
    parts = [
        "# Benchmarks",
        "_Generated by `make bench` (`python -m bench.run`): do not edit by hand, the "
        "next run rewrites this file. Raw figures: `bench/results/latest.json` (not "
        "committed). Issues 7, 15 and 19._",
        headline,
        targets.render(results),
        "![client CPU µs per chunk](benchmarks.png)",
        _machine(data),
        _throughput(results, "big", "One stream of 100,000 chunks")
        + "\n\n“vs openai-python”: this client's CPU per chunk over openai-python's in "
        f"the same mode (sync or async); below 1{TIMES} is less CPU. “vs native”: over "
        "deltastream's native client's in the same mode. “vs raw floor”: over the "
        f"sync raw floor's. “fastest {RANGE} slowest run”: the range of the runs whose median "
        "is shown. " + _server_note(results) + _first_stream(results),
        _throughput(results, "many", "1,000 sequential streams of 100 chunks")
        + "\n\nOne client, streams one after another; TCP connections are what the "
        "server accepted for the 1,000 streams. " + _per_stream(results),
        alternation.render(results),
        _ttfc(results),
        _requests(results),
        _accumulation(results),
        _partial(results),
    ]
    if any(name in results for name in ("c1000", "c10k", "c10k busy")):
        parts.append(_concurrency(results, config))
    else:
        parts.append(
            "## Concurrency\n\nNot measured in this run (`--quick`); "
            "`python -m bench.run` without it adds the 1,000- and 10,000-stream tests."
        )
    parts.append(findings.render(data))
    return "\n\n".join(p for p in parts if p) + "\n"


def write(data: dict[str, Any], markdown: Path, png: Path) -> None:
    markdown.write_text(render(data))
    m = data["machine"]
    title = f"{m['cpu_model']}, {m['nproc']} CPUs, Python {m['python']}"
    try:
        plot(data["results"], SEQUENTIAL, png, title)
    except ImportError as exc:  # matplotlib is an extra
        print(f"no plot ({exc}); install matplotlib for docs/benchmarks.png", file=sys.stderr)
