"""The "Where the time goes" section: measured layers, the profile, and what they mean.

Two sources that check each other. The layer jobs read the same 100,000-chunk body
through one more layer of deltastream's stack at a time (each its own fresh process),
so the differences are measured costs, not estimates. The profile (py-spy) of the
real ``Stream`` says which functions inside those layers take the time.
"""

from __future__ import annotations

from typing import Any

from .alternation import request_ratio, request_rounds
from .clients import DROPIN_ASYNC, DROPIN_SYNC, FLOOR_ASYNC, FLOOR_SYNC, NATIVE_ASYNC, NATIVE_SYNC
from .figures import DASH, TIMES, median
from .payload import MIN_CHUNKS

__all__ = ["explain", "render"]

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
    ("Headers", "httpx2: header objects of requests and responses"),
    ("(httpx2/", "httpx2: the client around the transport (requests, responses, hooks)"),
    ("(anyio/", "anyio: cancel scopes and checkpoints around each I/O call"),
    ("_feed_chunked", "deltastream _h1: strips the chunked framing of a whole read"),
    ("_whole_chunks", "deltastream _h1: finds the HTTP chunks of a read (`bytes.find`, slices)"),
    ("ServerSentEvent.__init__", "deltastream: one event object per SSE event"),
    ("BodyDecoder", "deltastream _h1: body framing"),
    ("_ResponseBody", "deltastream transport: one `recv` per piece handed up"),
    ("_Channel", "deltastream async transport: buffered protocol, one future per wait"),
    ("(deltastream/transport/_async", "deltastream async transport"),
    ("(deltastream/transport/_sync", "deltastream transport"),
    ("decode_chat_chunk", "deltastream: msgspec decode into the typed Structs (C code)"),
    ("SSEDecoder", "deltastream: SSE parsing (engine/_sse.py)"),
    ("ChatAccumulator", "deltastream: accumulating the completion"),
    ("ChunkStream", "deltastream: per-event loop: `[DONE]`, error check, accumulate"),
    ("_iter_chunks", "deltastream: the `Stream` shell (watchdog progress, yield)"),
    (
        "ChatFace.present",
        "drop-in: openai's `ChatCompletionChunk` validated from the event's bytes by "
        "pydantic-core (C code)",
    ),
    ("_hand_pending", "drop-in: accumulates the engine's chunk as openai's is handed over"),
    ("StreamCore._out", "deltastream: a read's items to the face, presented lazily (`map`)"),
    ("StreamCore.feed", "deltastream: per-read loop"),
    ("(deltastream/dropin/", "deltastream drop-in"),
    ("(openai/", "openai-python"),
    ("(pydantic", "pydantic"),
    ("(deltastream/", "deltastream"),
    ("(asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio: selector bookkeeping (each connect registers the socket)"),
    ("importlib", "importing modules (the profile covers the whole worker process)"),
    ("(bench/", "the benchmark loop"),
]


def explain(function: str) -> str:
    for needle, meaning in _MEANINGS:
        if needle in function:
            return meaning
    return ""


def _us(results: dict[str, Any], section: str, client: str) -> float | None:
    value: float | None = median(results, section, client).get("us_per_chunk")
    return value


def _f(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def _layer_table(results: dict[str, Any]) -> tuple[str, dict[str, dict[str, float | None]]]:
    rows = [
        (
            "httpx2 over httpcore2 + h11 (its default transport), nothing parsed",
            "layer: httpcore2 transport",
        ),
        ("httpx2 over deltastream's transport, nothing parsed", "layer: own transport"),
        ("deltastream's transport + `SSEDecoder`", "layer: + SSEDecoder"),
        (
            "deltastream's transport + `ChunkStream` (SSE, typed decode, checks)",
            "layer: + ChunkStream",
        ),
        (
            "**deltastream native sync** (`Stream`: + accumulation, deadlines, metrics)",
            NATIVE_SYNC,
        ),
        ("**deltastream drop-in sync** (+ openai's pydantic types per chunk)", DROPIN_SYNC),
        ("raw floor (socket, own chunked decoding, msgspec)", FLOOR_SYNC),
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


def _cost(value: float) -> str:
    return f"{value:.2f} µs" if value >= 0.05 else "nothing measurable"


def _sync_findings(values: dict[str, dict[str, float | None]], profile: dict[str, Any]) -> str:
    names = [
        (NATIVE_SYNC, "event"),
        ("layer: httpcore2 transport", "event"),
        ("layer: httpcore2 transport", "coalesced"),
        ("layer: own transport", "event"),
        ("layer: own transport", "coalesced"),
        ("layer: + SSEDecoder", "event"),
        ("layer: + ChunkStream", "event"),
        (FLOOR_SYNC, "event"),
    ]
    figures = [values[client][column] for client, column in names]
    if any(value is None for value in figures):
        return "_Some layer jobs failed; see the tables above._"
    ds, core, core_c, own, own_c, sse, chunks, floor = (float(value or 0.0) for value in figures)
    http = _share(profile, "deltastream transport")
    return "\n".join(
        [
            f"1. **The HTTP layer was most of the cost, and is now small.** httpx2's "
            f"default transport (httpcore2 + h11) spends {core:.2f} µs per chunk just "
            f"reading this body, because it handles every HTTP chunk on its own: h11 "
            f"matches the size line with a regex, builds a `Data` event and runs its state "
            f"machine, httpcore2 copies the data and hands it up through several "
            f"generators. A server that flushes every token sends one HTTP chunk per "
            f"event, so all of it is paid per event (the same bytes as one HTTP chunk per "
            f"~64 KB cost it {core_c:.2f} µs). deltastream's own transport "
            f"(`transport/_sync.py`, `transport/_h1.py`) reads up to 64 KiB per `recv` and "
            f"strips the "
            f"framing of all of it with `bytes.find` and slices: {own:.2f} µs per chunk "
            f"({core / max(own, 1e-9):.0f}{TIMES} less; {own_c:.2f} µs with coalesced "
            f"chunks). In the profile the transport and framing are {http:.0%} of the "
            f"samples.",
            f"2. **What is left is the work itself.** Over deltastream's transport, SSE "
            f"parsing costs {_cost(sse - own)} per event (a read of plain `data:` events, "
            f"what LLM servers send, is split into the events' data at once, with no "
            f"object per event; anything else goes through the full decoder), decoding "
            f"into the typed Structs "
            f"with the `[DONE]`/error checks, and their accumulation (`ChunkStream` does "
            f"both) {_cost(chunks - sse)}, and the `Stream` shell (deadline progress, "
            f"metrics, the generator step) {_cost(ds - chunks)}.",
            f"3. **Against the floor** ({floor:.2f} µs, the native client "
            f"{ds / max(floor, 1e-9):.2f}{TIMES}): "
            f"the raw floor decodes into a three-field Struct and keeps nothing; "
            f"deltastream decodes every field of `ChatCompletionChunk` (unknown ones "
            f"kept), accumulates the completion, checks each event for errors and "
            f"`[DONE]`, and keeps deadlines and metrics. The decode of the full type is "
            f"the largest single item in the profile above.",
        ]
    )


def _dropin_findings(
    results: dict[str, Any], profile: dict[str, Any] | None, native_profile: dict[str, Any]
) -> str:
    """What the drop-in adds over the native client, on the same engine."""
    native, dropin = _us(results, "big", NATIVE_SYNC), _us(results, "big", DROPIN_SYNC)
    if native is None or dropin is None:
        return ""
    text = (
        f"4. **The drop-in** spends {dropin:.2f} µs per chunk, {dropin - native:.2f} µs "
        f"more than the native client on the same engine (fresh-process medians; the "
        f"in-process ratio is in “The headline clients taking turns in one process”). "
        f"Its chat streams decode each event once, straight from its bytes into "
        f"openai's `ChatCompletionChunk` by pydantic-core (one item at a time, as the "
        f"caller takes it), and the engine accumulates openai's chunks as they are; "
        f"the difference is pydantic's objects against msgspec's Structs: building "
        f"them, and reading their attributes in the accumulator."
    )
    if profile:
        face = _share(profile, "deltastream dropin")
        text += (
            f" In its profile below, the drop-in's own frames (the pydantic-core call "
            f"is C code and counts to them) are {face:.0%} of the samples"
        )
        loop, native_loop = _share(profile, "benchmark"), _share(native_profile, "benchmark")
        if loop > 2 * native_loop:
            text += (
                f", and the benchmark loop's own line {loop:.0%} (the native client's: "
                f"{native_loop:.0%}): most likely freeing each openai object when the "
                f"next one takes its variable, a C deallocation that a sampler shows at "
                f"the Python line that caused it"
            )
        text += "."
    return text


def _async_findings(data: dict[str, Any]) -> str:
    profiles = data.get("profile", {})
    results = data["results"]
    parts = []
    c1000 = median(results, "c1000", NATIVE_ASYNC)
    floor = median(results, "c1000", FLOOR_ASYNC)
    dropin = median(results, "c1000", DROPIN_ASYNC)
    if c1000.get("later_p99_ms") is not None and c1000.get("first_chunk_p99_ms") is not None:
        text = (
            f"**Latency at 1,000 streams.** After a stream's first chunk, deltastream's "
            f"native client adds "
            f"{c1000['later_p50_ms']:.2f} ms at p50 and {c1000['later_p99_ms']:.1f} ms at "
            f"p99, and {c1000['first_chunk_p99_ms']:.1f} ms at p99 on the first chunks. "
            f"All 1,000 streams start at once and the server sends each first chunk as "
            f"soon as it has the request; the starts (a TCP connect, the request built "
            f"and sent: about a hundred µs of CPU each, much of it in the kernel) are let "
            f"through 16 per turn of the event loop (`engine/_pacing.py`), so the reads "
            f"of the streams already running go in between. Before that, one turn built "
            f"and sent all 1,000 requests and every chunk waited behind it (first chunks "
            f"70 to 110 ms at p99). Spreading the starts also spreads the streams' chunks "
            f"over the 1/3 s between them: the loop wakes more often for fewer chunks, "
            f"which costs a few percent of a core more in the steady middle than the "
            f"same streams started in one bunch (with starts spread over a second, as "
            f"below, the two cost the same)."
        )
        if floor.get("first_chunk_p99_ms") is not None:
            text += (
                f" The raw floor, which builds a request with one format string, has "
                f"first chunks at {floor['first_chunk_p99_ms']:.0f} ms p99 and later ones "
                f"at {floor['later_p99_ms']:.1f} ms."
            )
        if c1000.get("gc_s") is not None:
            text += (
                f" The garbage collector took {c1000['gc_s']:.2f} s of the run "
                f"({c1000['gc_full_collections']:.0f} full passes)."
            )
        if dropin.get("later_p99_ms") is not None:
            text += (
                f" The drop-in adds {dropin['later_p50_ms']:.2f} ms at p50 and "
                f"{dropin['later_p99_ms']:.1f} ms at p99 after the first chunk, at "
                f"{dropin['steady_cpu_pct']:.1f}% of a core in the steady middle "
                f"(native: {c1000['steady_cpu_pct']:.1f}%)."
            )
        ramped = median(results, "c1000", f"{NATIVE_ASYNC} started over 1 s")
        if ramped:
            text += (
                f" With the same streams started evenly over one second, the native "
                f"client's "
                f"p99 over every chunk is {ramped['latency_p99_ms']:.1f} ms (first chunks "
                f"{ramped['first_chunk_p99_ms']:.1f} ms)"
            )
            if ramped["latency_p99_ms"] < c1000["latency_p99_ms"] / 4:
                text += ": the wait comes from the simultaneous start, not from streaming"
            text += "."
        on_uvloop = median(results, "c1000", f"{NATIVE_ASYNC} on uvloop")
        if on_uvloop:
            text += (
                f" On uvloop: {on_uvloop['steady_cpu_pct']:.1f}% of a core in the steady "
                f"middle (asyncio's loop: {c1000['steady_cpu_pct']:.1f}%), first chunks "
                f"{on_uvloop['first_chunk_p99_ms']:.0f} ms p99, later ones "
                f"{on_uvloop['later_p99_ms']:.1f} ms."
            )
        parts.append(text)
    p = profiles.get("async")
    if p:
        loop = _share(p, "asyncio")
        ours = _share(p, "deltastream")
        job = p["job"]
        parts += [
            f"### Profile of `AsyncStream`, {job['streams']:,} paced streams",
            f"Here each chunk arrives alone and is read alone, so what counts is the cost "
            f"of a wake-up. deltastream's async transport is an `asyncio.BufferedProtocol`: "
            f"a read that finds data costs no task switch, one that waits costs one "
            f"future; no anyio layer, no pool pass per request. deltastream's code is "
            f"{ours:.0%} of the samples, the asyncio loop itself {loop:.0%}.",
            _profile_tables(p),
        ]
    parts += _ten_thousand(data)
    return "\n\n".join(parts)


def _ten_thousand(data: dict[str, Any]) -> list[str]:
    ds = median(data["results"], "c10k", NATIVE_ASYNC)
    if not ds:
        return []
    text = (
        f"**10,000 streams.** deltastream native async completed {ds['completed']:,.0f} of "
        f"{ds['streams']:,.0f} with {ds['errors']:,.0f} errors. Its default pool opens "
        f"as many connections as the process may (RLIMIT_NOFILE, less 256 kept for "
        f"everything else), so all 10,000 run at once; openai-python's 1,000-connection "
        f"pool makes the rest queue behind the first 1,000."
    )
    if ds.get("gc_s") is not None:
        text += (
            f" Its latency at that scale is set by start-up and the garbage collector: "
            f"{ds['gc_s']:.1f} s of the run went to {ds['gc_full_collections']:.0f} full "
            f"collections over the objects of 10,000 open streams. An application that "
            f"runs this many streams in one process does well to call `gc.freeze()` after "
            f"start-up or to raise `gc.set_threshold`; a library should not do it for "
            f"the application."
        )
    dropin = median(data["results"], "c10k", DROPIN_ASYNC)
    if dropin:
        text += (
            f" The drop-in, on the same transport and pool, completed "
            f"{dropin['completed']:,.0f} with {dropin['errors']:,.0f} errors "
            f"({dropin['unfinished']:,.0f} unfinished)."
        )
    return [text]


def _request_findings(results: dict[str, Any]) -> str:
    """Why a request, its first chunk and an open stream cost more than the floor's."""
    native = median(results, "one request", NATIVE_SYNC).get("us_per_chunk")
    floor = median(results, "one request", FLOOR_SYNC).get("us_per_chunk")
    if native is None or floor is None:
        return ""
    per_request, floor_request = native * MIN_CHUNKS, floor * MIN_CHUNKS
    turns = request_ratio(results, NATIVE_SYNC, FLOOR_SYNC)
    ours, theirs = request_rounds(results, NATIVE_SYNC), request_rounds(results, FLOOR_SYNC)
    taking_turns = (
        ""
        if turns is None or ours is None or theirs is None
        else f"; taking turns request by request in one process, {turns.median:.2f}{TIMES}, "
        f"rounds {turns.low:.2f}{TIMES} to {turns.high:.2f}{TIMES}, at {ours.median:.0f} "
        f"µs and {theirs.median:.0f} µs. Until this run the floor read 256 KiB at a "
        "time, and each read's buffer was a block at the top of the heap that glibc "
        "gave back to the kernel when it was freed and took again at the next read: "
        "about four page faults a request (getrusage), in some processes and none in "
        "others, by what the process had allocated before. That is why its request "
        "flipped between about 55 and about 110 µs in fresh processes, and read 125 to "
        "133 µs in the process where the two took turns, where the native client came "
        f"out at 1.56{TIMES} and the target looked met. The floor now reads 64 KiB at "
        "a time, as deltastream's transports do (no page fault, and the same CPU per "
        "chunk on a long stream), and its request costs the same in every process. "
        "By this run's fresh medians a request needs "
        f"{1 - 2 * floor_request / per_request:.0%} less CPU ({per_request:.0f} µs "
        f"against twice {floor_request:.0f}) to meet the target, and about "
        f"{1 - 2 / turns.median:.0%} less taking turns"
    )
    text = (
        f"**A request.** The native client spends {per_request:.0f} µs of CPU on a "
        f"request of the shortest stream, the raw floor {floor_request:.0f} µs "
        f"({per_request / floor_request:.1f}{TIMES}{taking_turns}). The floor formats one request "
        "head and parses the status line. deltastream's request, from a client that "
        "httpx2 would add nothing to (no auth, event hooks, stored cookies or client "
        "query parameters, its own transport for the URL, httpx2's logging off), goes "
        "straight to the transport with the request httpx2 would have built "
        "(`engine/_direct.py`; before, httpx2's request building and sending cost about "
        "a third of a request); any other client goes the long way, so cookies, hooks, "
        "auth and a user's own `http_client=` keep working. What is left over the floor "
        "is Python code, not system calls: over 5,000 requests (getrusage, runs of 1,000 "
        "and 6,000 apart) the native client spends about 125 µs in user space and 30 µs "
        "in the kernel per request, the floor about 30 µs and 20 µs. In instructions "
        "(callgrind, 200 against 400 requests) a request is about 410,000 against the "
        "floor's 106,000 (462,000 at the start of this round, measured the same way; "
        "505,000 two rounds ago). Instructions no longer predict the time: compiling "
        "the transport and most of the engine with mypyc (a trial, not shipped) took "
        "21.6% of them off (408,700 to 320,500) and left the CPU time as it was "
        f"(0.99{TIMES}, 8 pairs of fresh processes taking turns). What binds the "
        "request is the caches: cachegrind counts 8,500 first-level instruction-cache "
        "and 7,300 data-cache misses per request against the floor's 2,400 and 1,100, "
        "and compiled they stayed (9,400 and 7,200). CPython's bytecode and its inline "
        "caches are data, so the cost follows how much distinct code and how many "
        "objects a request touches, not how many instructions run over them. Of the "
        "462,000: the request's options and the "
        "request itself about 64,000; the transport's exchange, the body's framing "
        "and the close about 183,000 (httpx2's request and response objects, the "
        "pool's check that an idle connection is still open, the head); the stream "
        "about 215,000 (its set-up, the SSE and typed decoding, the accumulation, the "
        "deadline watch, the close). What cost most was not a call but what a call "
        "can hide: httpx2 closes a response inside a context manager built on a "
        "generator, which the stream paid twice per request (about 15,000 "
        "instructions; our own body's close is now called as httpx2's would call it, "
        "without the wrapper, which only names the request in an error our close "
        "never raises); an `isinstance` test against `collections.abc.Generator`, "
        "answered in Python by the ABC machinery (about 5,000; now the exact type); "
        "the request's origin, read through three URL properties per request (now "
        "kept with the prepared head); a `contextlib.suppress`; and a response that "
        "came whole with its head took two passes through the stream, its first "
        "event alone and then the rest (now one when less than 2 KiB follows the "
        "first event: unframing that much costs less than a pass, and the first chunk "
        "of a longer rest still comes up alone). Each transport's response body is "
        "now one object with slots where it was two and a dict. Each against the "
        f"main before it, taking turns: 0.92{TIMES} for the trims and the close, "
        f"0.93{TIMES} for the one pass, 0.97{TIMES} for the one body object. Found on "
        "the way "
        "and gone: `needle in some_bytes` on CPython 3.11 first tries the needle as an "
        "integer and raises and clears a `TypeError` (3 a request, ~3,000 instructions "
        "each), and httpx2's `headers.get` of an absent header raises and catches a "
        "`KeyError`; no exception is raised per request now. The time to first chunk "
        "is mostly this same CPU. **The first chunk**, taken apart for the native sync "
        "client (time marks around its socket calls, the median of 2,800 warm streams; "
        "the floor's in brackets): 26 µs before the request goes out (5), the send 20 µs "
        "(14), the wait for the server 93 µs (84), and 50 µs from the head's arrival to "
        "the first chunk (7). The floor sending deltastream's very bytes sends and waits "
        "no longer than with its own shorter request: the extra 15 µs there is the "
        "kernel's and the server's work on caches the client's longer path has just "
        "churned, not the request's size. And what runs after the wait runs on a CPU "
        "this VM has just woken: the head is parsed in 13 µs there against 4.4 µs in a "
        "tight loop. Two rounds ago about 5% came off (a short stream that came whole "
        "with its head hands its first event up before the rest is unframed; no socket "
        "option changes per request; no second look at the deadlines on the first "
        "event). What is left is spread over some forty calls of a few µs each: the "
        "options and the request (about 20 µs there), the response and the stream "
        "objects, the deadline watch. Moving single steps out of the stretch after "
        "the wait gained nothing measurable (the stream's core built before the send, "
        f"the deadline watch registered after the first chunk: 1.00{TIMES} and "
        f"0.995{TIMES} against main, taking turns): the first microseconds after a "
        "wake are slow whatever runs in them. Taken apart by layer instead (each stack "
        "on the same server, "
        "all taking turns with the floor stream by stream in one process, 15 rounds): "
        f"deltastream's transport handing its body to the stream's core is 1.18{TIMES} "
        f"to 1.30{TIMES} the floor's first chunk; the engine's send around it (options, "
        f"retries, the direct lane) adds about 0.05{TIMES}, the stream object (its "
        f"watch, metrics and generator) 0.08{TIMES}, and `create()` 0.04{TIMES}. "
        "Leaving out the deadline watch, the metrics, httpx2's bound stream, the check "
        "for redirects and cookies and the pool's check of an idle connection all at "
        f"once gained 3% (0.97{TIMES}): the cost is in no one of the layers but in "
        "there being this many. What does help is putting work in the wait itself: a "
        "busy loop of 30 µs placed between the send and the first receive left the "
        "first chunk as it was. So the stream is now made there: the transport calls "
        "back once the request is out, the stream's core, accumulator, metrics, watch "
        "and generator are made while the server works, and they are bound to the "
        "response when its head is in (`engine/_streams.py`, `InFlight`). From the "
        "head's arrival to the first chunk went from 50 µs to 44 µs; against the main "
        f"before it, taking turns, 0.975{TIMES} (20 rounds, 0.953{TIMES} to "
        f"0.984{TIMES}; async 0.989{TIMES}). A busy loop of 60 µs there, longer than "
        "the CPU's idle then lasts, took about 30 µs off the first chunk of both the "
        "native client and the floor: most of the cost of the wait is the wake itself, "
        "which the floor pays too (a library should not spin to avoid it: against a "
        "real model the wait is a hundred milliseconds)."
    )
    kib = median(results, "c10k", NATIVE_ASYNC).get("kb_per_stream")
    floor_kib = median(results, "c10k", FLOOR_ASYNC).get("kb_per_stream")
    if kib is not None and floor_kib is not None:
        text += (
            f" **An open stream** holds {kib:.1f} KiB of the process's memory at 10,000 "
            f"streams (the floor {floor_kib:.1f} KiB; 9.7 KiB before this round, whose "
            "response body is one object where it was two and a dict; 11.8 and 14.8 KiB "
            "the rounds before). What went in those: the async generator each stream "
            "ran in (the event loop kept a weak reference to each in a set) and the "
            "coroutine of the body it waited through (the stream is its own iterator and "
            "waits for the connection in its one frame); the timer each connection kept "
            "for a per-read timeout that the deadline watchdog makes redundant on a "
            "socket; per-stream copies of what every stream repeats (the status line, the "
            "model name, the role, the request's header list, now made only when read); "
            "and empty tables made before they were needed (choice fields most streams "
            "never use, the metrics' gap buckets, the SSE decoder's line buffer). What is "
            "left: the chunk the caller holds, about 1 KiB with its raw JSON (which "
            "`to_dict()` gives back exactly; the floor's chunk type has three fields); "
            "httpx2's request and response with their headers and extension dicts, about "
            "1.2 KiB; the frame the stream waits in, about 0.3 KiB; asyncio's transport "
            "for the socket, about 0.9 KiB as for the floor; and a dozen owners of 50 to "
            "150 bytes: the SSE decoder, the accumulator, the metrics, the deadline watch "
            "and its heap entry, the connection's channel. **A finished stream** leaves only "
            "its heap entry (about 200 bytes) until the watchdog next looks (or the heap "
            "is compacted); two rounds ago the entry held the stream's body too, and "
            "through it the request with its prompt (500 finished streams with 100 kB "
            "prompts held 75.7 MB; now 0.2 MB). Until this round the watchdog also woke "
            "for each finished stream's entry when it came due, a while after the "
            "stream: a client making many short requests paid a wake-up per request "
            "from the idle time on (0.65 wakes per request with 20 ms deadlines). Now "
            "every entry that no longer counts leaves the top of the heap at any look, "
            "due or not, and the thread sleeps until a watch still on (0.07)."
        )
    return text


def render(data: dict[str, Any]) -> str:
    results = data["results"]
    table, values = _layer_table(results)
    parts = [
        "## Where the time goes",
        "deltastream's native client (sync) on the 100,000-chunk stream, and what the "
        "drop-in adds. First measured, layer by layer: "
        "each row reads the same body through one more layer of the stack, in its own "
        "fresh process, median of the runs; CPU µs per chunk. The first row is the "
        "transport deltastream used before it had its own (httpx2's default). The "
        "second column is the same SSE bytes sent as one HTTP chunk per ~64 KB write "
        "instead of one per event.",
        table,
    ]
    profile = data.get("profile", {}).get("sync")
    dropin = data.get("profile", {}).get("dropin")
    if profile:
        parts += ["### Profile of the native `Stream` (sync)", _profile_tables(profile)]
        meaning = _sync_findings(values, profile)
        extra = _dropin_findings(results, dropin, profile)
        parts += ["### What it means", meaning + ("\n" + extra if extra else "")]
    if dropin:
        parts += ["### Profile of the drop-in's `Stream` (sync)", _profile_tables(dropin)]
    async_part = _async_findings(data)
    if async_part:
        parts.append(async_part)
    requests = _request_findings(results)
    if requests:
        parts += ["### A request, and an open stream", requests]
    return "\n\n".join(parts)
