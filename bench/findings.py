"""The "Where the time goes" section: measured layers, the profile, and what they mean.

Two sources that check each other. The layer jobs read the same 100,000-chunk body
through one more layer of deltastream's stack at a time (each its own fresh process),
so the differences are measured costs, not estimates. The profile (py-spy) of the
real ``Stream`` says which functions inside those layers take the time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["explain", "render"]

DASH = "\u2013"  # en dash: no figure
TIMES = "\u00d7"  # multiplication sign

# What a function in the profile is doing, by a piece of its name (first match wins).
_MEANINGS = [
    ("validate (h11", "h11: regex `fullmatch` on every chunk-size line"),
    ("ChunkedReader", "h11: chunked decoding; one `Data` event per HTTP chunk"),
    ("ReceiveBuffer", "h11: slicing the receive buffer"),
    ("Data.__init__", "h11: a `Data` event object per HTTP chunk"),
    ("(h11/", "h11: connection state machine, run once per HTTP chunk"),
    ("contextlib", "contextlib: httpcore2's `map_exceptions()`, entered per event and read"),
    ("SyncStream.read", "httpcore2: `settimeout` + `recv` (the kernel copy is here)"),
    ("SocketStream.receive", "anyio: one socket read (pause/resume reading per call)"),
    ("_receive_event", "httpcore2: pulls the next h11 event, reads when h11 needs data"),
    ("_receive_response_body", "httpcore2: copies each `Data` event into `bytes`"),
    (
        "_assign_requests_to_connections",
        "httpcore2 pool: a pass over every request and connection at each start/end",
    ),
    ("has_expired", "httpcore2 pool: probes each idle connection's socket in that pass"),
    ("is_socket_readable", "httpcore2 pool: probes each idle connection's socket in that pass"),
    ("getpeername", "httpcore2 pool: the socket probe (via anyio's `get_extra_info`)"),
    ("extra_attributes", "anyio: builds the extra-info dict for httpcore2's socket probe"),
    ("current_task", "asyncio `current_task()`: sniffio's library check, anyio cancel scopes"),
    ("(httpcore2/", "httpcore2: connection and pool bookkeeping"),
    ("(httpx2/", "httpx2: generator layers between httpcore2 and the caller"),
    ("(anyio/", "anyio: cancel scopes and checkpoints around each I/O call"),
    ("decode_chat_chunk", "deltastream: msgspec decode into the typed Structs (C code)"),
    ("SSEDecoder", "deltastream: SSE parsing (sse.py)"),
    ("ChatAccumulator", "deltastream: accumulating the completion"),
    ("ChunkStream", "deltastream: per-event loop: `[DONE]`, error check, accumulate"),
    ("_iter_chunks", "deltastream: the `Stream` shell (watchdog progress, yield)"),
    ("(deltastream/", "deltastream"),
    ("(asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio: epoll registration (anyio resumes reading per read)"),
    ("(bench/", "the benchmark loop"),
]


def explain(function: str) -> str:
    for needle, meaning in _MEANINGS:
        if needle in function:
            return meaning
    return ""


def _us(results: dict[str, Any], section: str, client: str) -> float | None:
    value: float | None = (
        results.get(section, {}).get(client, {}).get("median", {}).get("us_per_chunk")
    )
    return value


def _f(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def _layer_table(results: dict[str, Any]) -> tuple[str, dict[str, dict[str, float | None]]]:
    rows = [
        ("httpx2 `iter_raw()`, nothing parsed", "layer: httpx2 iter_raw"),
        ("httpx2 `iter_bytes()`, nothing parsed", "layer: httpx2 iter_bytes"),
        ("`iter_raw()` + deltastream `SSEDecoder`", "layer: + SSEDecoder"),
        ("`iter_raw()` + `ChunkStream` (SSE, decode, accumulate)", "layer: + ChunkStream"),
        ("**deltastream sync** (`Stream`, over `iter_bytes()`)", "deltastream sync"),
        ("raw floor (socket, own chunked decoding, msgspec)", "raw floor sync"),
    ]
    values: dict[str, dict[str, float | None]] = {}
    lines = [
        "| what reads the body | one HTTP chunk per event | one HTTP chunk per ~64 KB |",
        "| --- | --- | --- |",
    ]
    for label, client in rows:
        per_event_section = "big" if not client.startswith("layer") else "layers per-event"
        per_event = _us(results, per_event_section, client)
        coalesced = _us(results, "layers", client)
        values[client] = {"event": per_event, "coalesced": coalesced}
        lines.append(f"| {label} | {_f(per_event)} | {_f(coalesced)} |")
    return "\n".join(lines), values


def _profile_tables(profile: dict[str, Any]) -> str:
    layers = "\n".join(
        ["| layer (innermost frame) | share of CPU samples |", "| --- | --- |"]
        + [f"| {name} | {share * 100:.1f}% |" for name, share in profile["layers"]]
    )
    functions = "\n".join(
        ["| function (self time) | share | what it is |", "| --- | --- | --- |"]
        + [
            f"| `{name}` | {share * 100:.1f}% | {explain(name)} |"
            for name, share in profile["functions"][:15]
        ]
    )
    samples = f", {profile['samples']:,} samples" if profile.get("samples") else ""
    return f"{profile['tool']}{samples}.\n\n{layers}\n\n{functions}"


def _share(profile: dict[str, Any], prefix: str) -> float:
    return float(sum(share for name, share in profile["layers"] if name.startswith(prefix)))


def _function_share(profile: dict[str, Any], needle: str) -> float:
    """Self time of the functions whose name holds ``needle``."""
    return float(sum(share for name, share in profile["functions"] if needle in name))


def _inclusive_share(profile: dict[str, Any], function: str) -> float:
    """Share of the samples with ``function`` anywhere on the stack (closures excluded)."""
    for name, share in profile.get("inclusive", []):
        if name.split(" (")[0].rsplit(".", 1)[-1] == function:
            return float(share)
    return _function_share(profile, function)


def _cost(value: float) -> str:
    return f"{value:.2f} µs" if value >= 0.05 else "nothing measurable"


def _sync_findings(values: dict[str, dict[str, float | None]], profile: dict[str, Any]) -> str:
    names = [
        ("deltastream sync", "event"),
        ("deltastream sync", "coalesced"),
        ("layer: httpx2 iter_raw", "event"),
        ("layer: httpx2 iter_raw", "coalesced"),
        ("layer: httpx2 iter_bytes", "event"),
        ("layer: httpx2 iter_bytes", "coalesced"),
        ("layer: + SSEDecoder", "coalesced"),
        ("layer: + ChunkStream", "coalesced"),
        ("raw floor sync", "event"),
    ]
    figures = [values[client][column] for client, column in names]
    if any(value is None for value in figures):
        return "_Some layer jobs failed; see the tables above._"
    ds, ds_c, raw, raw_c, raw_bytes, raw_bytes_c, sse_c, chunks_c, floor = (
        float(value or 0.0) for value in figures
    )
    ours, ours_c = ds - raw, ds_c - raw_c
    http = _share(profile, "h11") + _share(profile, "httpcore2") + _share(profile, "httpx2")
    h11 = _share(profile, "h11")
    ctx = _function_share(profile, "contextlib")
    return "\n".join(
        [
            f"1. **The HTTP layer below deltastream is most of the cost.** Reading the "
            f"body with httpx2's `iter_raw()` and parsing nothing costs {raw:.2f} µs per "
            f"chunk, {raw / ds:.0%} of deltastream's {ds:.2f}; in the profile {http:.0%} "
            f"of the samples sit in httpx2/httpcore2/h11 ({h11:.0%} in h11 alone). For "
            f"every HTTP chunk h11 matches the chunk-size line with a regex, builds a "
            f"`Data` event and runs its state machine; httpcore2 enters a "
            f"`map_exceptions()` context manager ({ctx:.0%} of the samples are "
            f"contextlib), copies the data into `bytes` and hands it up through five "
            f"generators. With one SSE event per HTTP chunk, as a server that flushes "
            f"every token sends them, all of that is paid per event. When the same bytes "
            f"come as one HTTP chunk per ~64 KB, `iter_raw()` costs {raw_c:.2f} µs per "
            f"event and "
            f"deltastream {ds_c:.2f} µs ({ds / ds_c:.1f}{TIMES} less).",
            f"2. **`iter_raw()` instead of `iter_bytes()` would save little.** Measured, "
            f"`iter_bytes()` minus `iter_raw()` is {raw_bytes - raw:+.2f} µs per chunk "
            f"with one event per HTTP chunk and {raw_bytes_c - raw_c:+.2f} µs with "
            f"coalesced chunks: within run-to-run noise. Without a "
            f"`Content-Encoding`, `iter_bytes()` only adds an identity decoder and a "
            f"`ByteChunker` generator per piece.",
            f"3. **What would pay: fewer, bigger pieces.** A body reader that decodes the "
            f"chunked framing itself (over the connection's network stream, as the raw "
            f"floor does) and hands the SSE decoder everything one `recv` returned would "
            f"make the per-event framing cost what the coalesced column shows: about "
            f"{ds_c:.1f} µs per chunk instead of {ds:.1f}. It means owning the end of "
            f"the message and connection reuse after `[DONE]`, i.e. a small transport of "
            f"deltastream's own for the streaming body, not a one-line change.",
            f"4. **deltastream's own code pays per call, too.** Its part (deltastream "
            f"minus `iter_raw()`) is {ours:.2f} µs per chunk when each `feed()` carries "
            f"one event but {ours_c:.2f} µs when one carries ~200: about "
            f"{ours - ours_c:.2f} µs per chunk is fixed cost per piece (in "
            f"`SSEDecoder.feed`: the BOM and CR checks, `rfind`, `split`, list "
            f"allocations; in `ChunkStream.feed` and `Stream._iter_chunks`: a list per "
            f"piece, watchdog progress, `yield from`). A fast path in `SSEDecoder.feed` "
            f"for a piece that is exactly one complete `data:` line and blank line (no "
            f"CR, nothing pending: the common case here), and yielding from `feed` "
            f"without building a list, would recover part of it.",
            f"5. **Per event, with the per-piece costs amortised** (coalesced column): "
            f"SSE parsing {_cost(sse_c - raw_c)}, msgspec decoding into the typed Structs "
            f"plus the `[DONE]`/error checks and `ChatAccumulator.add` "
            f"{_cost(chunks_c - sse_c)}, the `Stream` shell {_cost(ds_c - chunks_c)}. "
            f"The raw floor does everything, HTTP included, in {floor:.2f} µs per chunk "
            f"with per-event framing (smaller Struct, no accumulation, no checks).",
        ]
    )


def _async_findings(data: dict[str, Any]) -> str:
    profiles = data.get("profile", {})
    parts = []
    p = profiles.get("async")
    if p:
        http = _share(p, "h11") + _share(p, "httpcore2") + _share(p, "httpx2")
        loop = _share(p, "anyio") + _share(p, "asyncio")
        pool = _inclusive_share(p, "_assign_requests_to_connections")
        job = p["job"]
        c1000 = data["results"].get("c1000", {}).get("deltastream async", {}).get("median", {})
        latency = ""
        floor = data["results"].get("c1000", {}).get("raw floor async", {}).get("median", {})
        if c1000.get("latency_p50_ms") and c1000.get("loop_lag_p50_ms"):
            latency = (
                f" The latency points the same way: a chunk waits "
                f"{c1000['latency_p50_ms']:.1f} ms (p50) while the loop's own lag is "
                f"{c1000['loop_lag_p50_ms']:.2f} ms. A chunk takes several loop iterations "
                f"to reach the consumer (resume reading, epoll, `data_received`, wake the "
                f"task), and under load each iteration runs every stream's ready callbacks"
            )
            if floor.get("latency_p50_ms") is not None:
                latency += (
                    f"; the raw floor's `StreamReader`, which keeps reading, adds "
                    f"{floor['latency_p50_ms']:.2f} ms"
                )
            latency += "."
        parts += [
            f"### Profile of `AsyncStream`, {job['streams']:,} paced streams",
            f"Here each chunk arrives alone and is read alone, so the cost per read "
            f"is what counts, and deltastream's own code is {_share(p, 'deltastream'):.0%} "
            f"of the samples. httpx2/httpcore2/h11 take {http:.0%}; {pool:.0%} of all "
            f"samples are under the pool's `_assign_requests_to_connections`, which "
            f"passes over every request and connection, probing each idle connection's "
            f"socket, whenever a request starts or ends. anyio and the asyncio loop take "
            f"{loop:.0%}: anyio's "
            f"socket stream pauses reading after each read and resumes it before the "
            f"next, an epoll registration per chunk (`selectors.register`).{latency} A "
            f"read path of deltastream's own (an `asyncio.Protocol` that feeds the "
            f"decoder from `data_received`, as the raw floor's `StreamReader` does) is "
            f"where a large saving would be; the parsing is not.",
            _profile_tables(p),
        ]
    parts += _ten_thousand(data)
    return "\n\n".join(parts)


def _ten_thousand(data: dict[str, Any]) -> list[str]:
    c10k = data["results"].get("c10k", {})
    ds = c10k.get("deltastream async", {}).get("median", {})
    if not ds or ds.get("completed", 0) >= ds.get("streams", 0):
        return []
    text = (
        f"**10,000 streams.** deltastream async completed {ds['completed']:,.0f} of "
        f"{ds['streams']:,.0f} in the time given. With the default pool of 1,000 "
        f"connections the other requests wait in httpcore2's pool, which passes over "
        f"every request (queued ones included) and every connection each time a "
        f"request starts, ends or times out: quadratic in the queue. deltastream's "
        f"pool deadline is its `connect` "
        f"deadline, 5 s, and a pool or connect timeout is retried (twice by default), "
        f"so the waiting requests time out and join the queue again."
    )
    no_retry = c10k.get("deltastream async, max_retries=0", {}).get("median", {})
    if no_retry:
        text += (
            f" With `max_retries=0` the same run completes {no_retry['completed']:,.0f} "
            f"streams and fails {no_retry['errors']:,.0f} with `APITimeoutError`."
        )
    p = data.get("profile", {}).get("async10k")
    if p:
        pool = _inclusive_share(p, "_assign_requests_to_connections")
        text += (
            f" In a profile of that test ({p['job']['deadline']} s), "
            f"{pool:.0%} of the CPU samples are in `_assign_requests_to_connections`."
        )
    text += (
        " Suggestions: do not retry pool timeouts; give the pool deadline its own, "
        "longer default; or keep the queue out of httpcore2 with a semaphore of "
        "deltastream's own sized to the pool, so that waiting costs nothing."
    )
    return [text]


def render(data: dict[str, Any]) -> str:
    results = data["results"]
    table, values = _layer_table(results)
    parts = [
        "## Where the time goes",
        "deltastream sync on the 100,000-chunk stream. First measured, layer by layer: "
        "each row reads the same body through one more layer of the stack, in its own "
        "fresh process, median of the runs; CPU µs per chunk. The second column is the "
        "same SSE bytes sent as one HTTP chunk per ~64 KB write instead of one per "
        "event.",
        table,
    ]
    profile = data.get("profile", {}).get("sync")
    if profile:
        parts += ["### Profile of `Stream` (sync)", _profile_tables(profile)]
        parts += ["### What it means", _sync_findings(values, profile)]
    async_part = _async_findings(data)
    if async_part:
        parts.append(async_part)
    return "\n\n".join(parts)
