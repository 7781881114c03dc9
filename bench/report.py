"""docs/benchmarks.md from the results of a run (and the plot beside it).

Everything in the document is computed from ``bench/results/latest.json``; the prose
of "Where the time goes" is written around the measured figures, so a run on other
code or another machine rewrites it with its own numbers.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from . import findings
from .plot import plot

__all__ = ["DASH", "TIMES", "render", "write"]

DASH = "\u2013"  # en dash: no figure
TIMES = "\u00d7"  # multiplication sign, for ratios
RANGE = "\u2013"  # en dash between the fastest and slowest run

SEQUENTIAL = [
    "deltastream sync",
    "deltastream async",
    "openai-python sync",
    "openai-python async",
    "httpx2 sse sync",
    "httpx2 sse async",
    "raw floor sync",
    "raw floor async",
]
ASYNC = [c for c in SEQUENTIAL if c.endswith("async")]
NO_RETRIES = "deltastream async, max_retries=0"


def _median(results: dict[str, Any], section: str, client: str) -> dict[str, Any]:
    median: dict[str, Any] = results.get(section, {}).get(client, {}).get("median", {})
    return median


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    if not value or not base:
        return DASH
    return f"{value / base:.2f}{TIMES}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _openai_of(client: str) -> str:
    return "openai-python async" if client.endswith("async") else "openai-python sync"


def _runs(results: dict[str, Any], section: str, client: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = results.get(section, {}).get(client, {}).get("runs", [])
    return runs


def _per_run(results: dict[str, Any], section: str, client: str, key: str) -> list[float]:
    """One figure from each run that has it."""
    return [run[key] for run in _runs(results, section, client) if key in run]


def _spread(results: dict[str, Any], section: str, client: str, key: str) -> str:
    """Fastest and slowest run of one figure: how far the median could have moved."""
    values = sorted(_per_run(results, section, client, key))
    if len(values) < 2:
        return DASH
    return f"{_fmt(values[0], 2)} {RANGE} {_fmt(values[-1], 2)}"


def _failed(results: dict[str, Any], section: str, client: str) -> str:
    errors = _per_run(results, section, client, "error")
    return f"failed: {errors[0]}" if errors else "not run"


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
    runs = data["config"]["runs"]
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
        if name in sections and sections[name]["runs"] != runs
    ]
    single = f" ({'; '.join(others)})" if others else ""
    return "\n".join(
        [
            "## Machine and method",
            "",
            f"- CPU: {m['cpu_model']}, `nproc` = {m['nproc']}; memory {memory}; {m['os']}",
            f"- Python {m['python']} ({m['python_impl']}); {packages}",
            f"- deltastream at commit `{m['commit'] or 'unknown'}`{modified}; "
            f"run started {data['started']}, took {data['duration_s'] / 60:.1f} min",
            f"- Each figure is the median of {runs} run{'s' if runs != 1 else ''}{single}, "
            "each run a fresh process per client and workload, so CPU time and peak RSS "
            "are that client's alone. Runs interleave the clients.",
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


def _throughput(results: dict[str, Any], section: str, title: str) -> str:
    floor = _median(results, section, "raw floor sync").get("us_per_chunk")
    rows = []
    for client in SEQUENTIAL:
        m = _median(results, section, client)
        if not m:
            rows.append([client, _failed(results, section, client), "", "", "", "", "", ""])
            continue
        base = _median(results, section, _openai_of(client)).get("us_per_chunk")
        rows.append(
            [
                f"**{client}**" if client.startswith("deltastream") else client,
                _fmt(m["us_per_chunk"], 2),
                _spread(results, section, client, "us_per_chunk"),
                _fmt(m["chunks_per_s"], 0),
                _fmt(m["peak_rss_mb"]),
                _ratio(m["us_per_chunk"], base),
                _ratio(m["us_per_chunk"], floor),
                _fmt(m.get("connections"), 0),
            ]
        )
    header = [
        "client",
        "CPU µs/chunk",
        f"fastest {RANGE} slowest run",
        "chunks/s",
        "peak RSS MB",
        "vs openai-python",
        "vs raw floor",
        "TCP connections",
    ]
    return f"## {title}\n\n" + _table(header, rows)


def _ttfc(results: dict[str, Any]) -> str:
    rows = []
    for client in SEQUENTIAL:
        m = _median(results, "ttfc", client)
        if not m:
            rows.append([client, _failed(results, "ttfc", client), "", "", ""])
            continue
        rows.append(
            [
                client,
                _fmt(m["ttfc_ms"], 3),
                _fmt(m["ttfc_p99_ms"], 3),
                _fmt(m["cold_ttfc_ms"], 2),
                _fmt(m["connections"], 0),
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
    openai_sync = _median(results, "ttfc", "openai-python sync").get("connections", 0)
    if openai_sync > 1:
        note = (
            f"openai-python sync used {openai_sync:.0f} connections for 100 streams: its "
            "`Stream` stops reading at `data: [DONE]` and closes the response before the "
            "end of the chunked body, so httpcore2 cannot put the connection back in the "
            "pool (its async `Stream` drains the body first and reuses it). So each of its "
            "sequential streams opens a new TCP connection: its “warm” TTFC includes a "
            "connect, and so do its figures for 1,000 sequential streams."
        )
    return "\n\n".join(
        [
            "## Time to first chunk and connection reuse",
            "100 sequential 10-chunk streams on one client: time from `create()` to "
            "the first chunk in hand, over the 99 streams after the first (which opens "
            "the connection). Connections are counted by the server: those that "
            "carried at least one request during the job.",
            _table(header, rows),
            note,
        ]
    )


DS, OPENAI, FLOOR = "deltastream sync", "openai-python sync", "raw floor sync"


def _targets(results: dict[str, Any]) -> str:
    """The roadmap's targets (issue 7) against this run's medians."""

    def us(section: str, client: str) -> float | None:
        value: float | None = _median(results, section, client).get("us_per_chunk")
        return value

    def fastest(section: str, client: str) -> float | None:
        return min(_per_run(results, section, client, "us_per_chunk"), default=None)

    def check(ok: bool | None) -> str:
        return DASH if ok is None else ("met" if ok else "**not met**")

    rows: list[list[str]] = []
    # (target, section, numerator, denominator, wanted, whether the ratio must stay below)
    ratios = [
        ("sync, long stream: CPU per chunk vs the raw floor", "big", DS, FLOOR, 1.5, True),
        (
            "sync, long stream: CPU per chunk, openai-python over deltastream",
            "big",
            OPENAI,
            DS,
            30,
            False,
        ),
        ("sync, 1,000 streams of 100 chunks: vs the raw floor", "many", DS, FLOOR, 3, True),
    ]
    for target, section, top, bottom, wanted, below in ratios:
        a, b = us(section, top), us(section, bottom)
        if a and b:
            rows.append(
                [
                    target,
                    f"{'≤' if below else '≥'} {wanted:g}{TIMES}",
                    _ratio(a, b),
                    check(a / b <= wanted if below else a / b >= wanted),
                    _ratio(fastest(section, top), fastest(section, bottom)),
                ]
            )
    for client in ("deltastream sync", "deltastream async"):
        connections = _median(results, "ttfc", client).get("connections")
        if connections is not None:
            rows.append(
                [
                    f"{client}: TCP connections for 100 sequential streams",
                    "1",
                    f"{connections:.0f}",
                    check(connections == 1),
                    DASH,
                ]
            )
    c1000 = _median(results, "c1000", "deltastream async")
    if c1000:
        rows.append(
            [
                "1,000 paced streams: client CPU, % of one core (steady; whole run)",
                "≤ 25",
                f"{_fmt(c1000['steady_cpu_pct'])}; {_fmt(c1000['cpu_pct'])}",
                check(c1000["steady_cpu_pct"] <= 25),
                DASH,
            ]
        )
        later = c1000.get("later_p99_ms")
        rows.append(
            [
                "1,000 paced streams: added latency p99 ms, every chunk",
                "≤ 20",
                _fmt(c1000["latency_p99_ms"]),
                check(c1000["latency_p99_ms"] <= 20),
                DASH,
            ]
        )
        if later is not None:
            rows.append(
                [
                    "... after each stream's first chunk",
                    "≤ 20",
                    _fmt(later),
                    check(later <= 20),
                    DASH,
                ]
            )
        for key, entry in results["c1000"].items():
            variant = key.removeprefix("deltastream async ")
            other = entry.get("median")
            if variant != key and other:
                rows.append(
                    [
                        f"... every chunk, {variant}",
                        "≤ 20",
                        _fmt(other["latency_p99_ms"]),
                        check(other["latency_p99_ms"] <= 20),
                        DASH,
                    ]
                )
    for section, label in (("c10k", ""), ("c10k busy", " beside a busy process")):
        for client in ("deltastream async", "deltastream async, max_retries=0"):
            m = _median(results, section, client)
            if not m or (section == "c10k" and client != "deltastream async"):
                continue
            suffix = ", max_retries=0" if client.endswith("=0") else ""
            rows.append(
                [
                    f"10,000 streams at 1 chunk/s{label}{suffix}: completed, errors",
                    "10,000, 0",
                    f"{m['completed']:,.0f}, {m['errors']:,.0f}",
                    check(m["completed"] == m["streams"] and m["errors"] == 0),
                    DASH,
                ]
            )
    if not rows:
        return ""
    return "\n\n".join(
        [
            "## Targets",
            "The roadmap's targets (issue 7) against this run. Why a target is not met, "
            "and what stands in the way, is under “Where the time goes”. Measured and "
            "result are from the medians; the last column is the same ratio over each "
            "client's fastest run, the figure least moved by the machine's own noise "
            "(see “Machine and method”).",
            _table(["target", "wanted", "measured", "result", "fastest runs"], rows),
        ]
    )


def _accumulation(results: dict[str, Any]) -> str:
    rows = []
    verdicts = []
    for mode in ("sync", "async"):
        client = f"deltastream {mode}"
        plain = _median(results, "accumulation", f"{client} plain iteration").get("us_per_chunk")
        rows.append([client, "plain iteration", _fmt(plain, 2), f"1.00{TIMES}"])
        for consumer in ("get_final_completion()", "text_deltas()"):
            m = _median(results, "accumulation", f"{client} {consumer}")
            value = m.get("us_per_chunk")
            rows.append([client, consumer, _fmt(value, 2), _ratio(value, plain)])
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
            "round of runs. deltastream accumulates every "
            "chunk as it decodes it, so `get_final_completion()` only adds the final "
            "join, and `text_deltas()` one generator step per chunk. " + verdict,
            _table(["client", "consumer", "CPU µs/chunk", "vs plain iteration"], rows),
        ]
    )


def _concurrency(results: dict[str, Any], config: dict[str, Any]) -> str:
    parts = ["## Concurrency (async clients, paced server)"]
    c1000 = config["sections"].get("c1000")
    if c1000:
        rows = []
        for client in results.get("c1000", {}):  # variant by variant, as bench/run.py ran them
            m = _median(results, "c1000", client)
            if not m:
                rows.append([client, _failed(results, "c1000", client)] + [""] * 12)
                continue
            rows.append(
                [
                    client,
                    _fmt(m["cpu_pct"]),
                    _fmt(m["steady_cpu_pct"]),
                    _fmt(m["latency_p50_ms"], 2),
                    _fmt(m["latency_p99_ms"], 1),
                    _fmt(m.get("later_p99_ms"), 1),
                    _fmt(m.get("first_chunk_p99_ms"), 1),
                    _fmt(m.get("gc_s"), 2),
                    f"{_fmt(m['loop_lag_p50_ms'], 2)} / {_fmt(m['loop_lag_p99_ms'], 1)}",
                    _fmt(m["kb_per_stream"]),
                    _fmt(m["peak_rss_mb"]),
                    _fmt(m["completed"], 0),
                    _fmt(m["errors"], 0),
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
            _table(header, rows),
        ]
    c10k = config["sections"].get("c10k")
    if c10k:
        clients = [*ASYNC[:1], NO_RETRIES, *ASYNC[1:]]
        parts += [
            f"### {c10k['streams']:,} concurrent streams at {c10k['rate']:g} chunk/s",
            f"{c10k['n']} chunks each (~{c10k['n'] / c10k['rate']:.0f} s if served at "
            f"once); streams still running {c10k['deadline']:g} s after the start are "
            "cancelled and counted as unfinished. Default client settings: openai-python "
            "pools at most 1,000 connections (httpx2 is given the same limits); "
            "deltastream as many as the process may open, less 256; the raw floor opens "
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
            _c10k_table(results, "c10k busy", [*ASYNC[:1], NO_RETRIES], busy),
        ]
    return "\n\n".join(parts)


def _c10k_table(
    results: dict[str, Any], section: str, clients: list[str], job: dict[str, Any]
) -> str:
    rows = []
    for client in clients:
        m = _median(results, section, client)
        runs = _runs(results, section, client)
        if not m:
            rows.append([client, _failed(results, section, client)] + [""] * 8)
            continue
        kinds = runs[-1].get("error_kinds") or {}
        detail = ", ".join(f"{k} {v:,}" for k, v in kinds.items()) or DASH
        rows.append(
            [
                client,
                f"{m['completed']:,.0f}",
                f"{m['errors']:,.0f}",
                detail,
                f"{m['unfinished']:,.0f}",
                _fmt(m["cpu_pct"]),
                _fmt(m["kb_per_stream"]),
                _fmt(m["latency_p50_ms"], 1),
                _fmt(m.get("loop_lag_p99_ms"), 0),
                _fmt(m.get("gc_s"), 1),
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
    return _table(header, rows)


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


def render(data: dict[str, Any]) -> str:
    results = data["results"]
    config = data["config"]
    big_ds = _median(results, "big", "deltastream sync").get("us_per_chunk")
    big_oa = _median(results, "big", "openai-python sync").get("us_per_chunk")
    big_floor = _median(results, "big", "raw floor sync").get("us_per_chunk")
    headline = ""
    if big_ds and big_oa and big_floor:
        headline = (
            f"On one 100,000-chunk stream deltastream (sync) spends {big_ds:.1f} µs of "
            f"CPU per chunk, openai-python {big_oa:.1f} µs ({big_oa / big_ds:.1f}{TIMES} "
            f"more), and the raw floor {big_floor:.1f} µs "
            f"(deltastream is {big_ds / big_floor:.1f}{TIMES} the floor)."
        )
    parts = [
        "# Benchmarks",
        "_Generated by `make bench` (`python -m bench.run`): do not edit by hand, the "
        "next run rewrites this file. Raw figures: `bench/results/latest.json` (not "
        "committed). Issue 7._",
        headline,
        _targets(results),
        "![client CPU µs per chunk](benchmarks.png)",
        _machine(data),
        _throughput(results, "big", "One stream of 100,000 chunks")
        + "\n\n“vs openai-python”: this client's CPU per chunk over openai-python's in "
        f"the same mode (sync or async); below 1{TIMES} is less CPU. “vs raw floor”: over the "
        f"sync raw floor's. “fastest {RANGE} slowest run”: the range of the runs whose median "
        "is shown. " + _server_note(results),
        _throughput(results, "many", "1,000 sequential streams of 100 chunks")
        + "\n\nOne client, streams one after another; TCP connections are what the "
        "server accepted for the 1,000 streams.",
        _ttfc(results),
        _accumulation(results),
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
