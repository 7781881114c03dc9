"""The headline clients taking turns in one process: per-round figures and ratios.

The fresh-process tables measure each client alone, but runs of one client minutes
apart land at different machine speeds (on a shared virtual machine, up to ~1.5x within
seconds), so a ratio of two medians carries both clients' noise. In the "alternating"
sections one worker runs each client once per round on the same 100,000-chunk stream
(openai-python on fewer chunks, its CPU per chunk being ~40x the others'); a ratio
taken within a round compares the clients at one machine speed. The rounds of every
run are pooled: a ratio is reported as the median of the per-round ratios with the
lowest and highest of them.
"""

from __future__ import annotations

from typing import Any

from .clients import (
    DROPIN_ASYNC,
    DROPIN_SYNC,
    FLOOR_ASYNC,
    FLOOR_SYNC,
    NATIVE_ASYNC,
    NATIVE_SYNC,
    OPENAI_ASYNC,
    OPENAI_SYNC,
)
from .figures import DASH, RANGE, TIMES, Spread, fmt, median, runs, table

__all__ = [
    "GROUPS",
    "GROUP_JOBS",
    "RATIOS",
    "TOGETHER",
    "Rounds",
    "floor_note",
    "label",
    "render",
    "request_ratio",
    "ttfc_note",
    "ttfc_pairs",
    "ttfc_ratio",
    "ttfc_rounds",
]

TOGETHER = "in one process"  # the results key of a section whose clients take turns

# The clients of each "alternating <group>" section. "native" keeps openai-python and
# pydantic out of the process: the raw floor's figure depends on the size of the heap
# (see "Rounds.floor_note"), and the native client's users do not load them.
GROUPS = {
    "sync": [NATIVE_SYNC, DROPIN_SYNC, OPENAI_SYNC, FLOOR_SYNC],
    "async": [NATIVE_ASYNC, DROPIN_ASYNC, OPENAI_ASYNC, FLOOR_ASYNC],
    "native": [NATIVE_SYNC, FLOOR_SYNC, NATIVE_ASYNC, FLOOR_ASYNC],
    "uvloop": [NATIVE_ASYNC, FLOOR_ASYNC],
}
# What a group's job sets besides its clients: the "uvloop" group runs on uvloop.
GROUP_JOBS: dict[str, dict[str, Any]] = {"uvloop": {"loop": "uvloop"}}
_SHORT = {
    NATIVE_SYNC: "native",
    NATIVE_ASYNC: "native",
    DROPIN_SYNC: "drop-in",
    DROPIN_ASYNC: "drop-in",
    OPENAI_SYNC: "openai-python",
    OPENAI_ASYNC: "openai-python",
    FLOOR_SYNC: "raw floor",
    FLOOR_ASYNC: "raw floor",
}
# (group, numerator, denominator), in the order the table shows them
RATIOS = [
    *(
        (group, top, bottom)
        for group, (native, dropin, openai, floor) in (
            ("sync", GROUPS["sync"]),
            ("async", GROUPS["async"]),
        )
        for top, bottom in (
            (dropin, native),
            (openai, dropin),
            (openai, native),
            (native, floor),
            (dropin, floor),
        )
    ),
    ("native", NATIVE_SYNC, FLOOR_SYNC),
    ("native", NATIVE_ASYNC, FLOOR_ASYNC),
    ("uvloop", NATIVE_ASYNC, FLOOR_ASYNC),
]


def _loop(group: str) -> str | None:
    """The event loop a group's rounds run on, when not asyncio's own."""
    loop: str | None = GROUP_JOBS.get(group, {}).get("loop")
    return loop


def label(top: str, bottom: str, group: str = "") -> str:
    """``drop-in / native (sync)``; ``native / raw floor (async, uvloop)`` for the
    uvloop group."""
    mode = "async" if top.endswith("async") else "sync"
    if loop := _loop(group):
        mode += f", {loop}"
    return f"{_SHORT[top]} / {_SHORT[bottom]} ({mode})"


class Rounds:
    """Every round of one group's alternating runs: client -> CPU µs per chunk."""

    def __init__(self, results: dict[str, Any], group: str) -> None:
        self.group = group
        self.rounds: list[dict[str, float]] = []
        self.process_of: list[int] = []  # which run (worker process) each round was in
        self.processes = 0
        self.chunks: dict[str, int] = {}
        for run in runs(results, f"alternating {group}", TOGETHER):
            clients: dict[str, Any] | None = run.get("clients")
            if not clients:
                continue  # a failed run
            self.processes += 1
            for name, figures in clients.items():
                self.chunks[name] = figures["chunks"]
            for i in range(run["rounds"]):
                self.process_of.append(self.processes)
                self.rounds.append(
                    {
                        name: figures["us_per_chunk"][i]
                        for name, figures in clients.items()
                        if i < len(figures["us_per_chunk"])
                    }
                )

    def __bool__(self) -> bool:
        return bool(self.rounds)

    def client(self, name: str) -> Spread | None:
        return Spread.of([r[name] for r in self.rounds if name in r])

    def ratio(self, top: str, bottom: str) -> Spread | None:
        """``top``'s CPU per chunk over ``bottom``'s, round by round."""
        return Spread.of([r[top] / r[bottom] for r in self.rounds if top in r and r.get(bottom)])

    def ratio_by_process(self, top: str, bottom: str) -> list[float]:
        """The median per-round ratio of each process: how well the runs agree."""
        found = []
        for process in range(1, self.processes + 1):
            spread = Spread.of(
                [
                    r[top] / r[bottom]
                    for r, p in zip(self.rounds, self.process_of, strict=True)
                    if p == process and top in r and r.get(bottom)
                ]
            )
            if spread is not None:
                found.append(spread.median)
        return found

    def holds(self) -> str:
        names = sorted({_SHORT[name] for name in self.chunks}, key=list(_SHORT.values()).index)
        modes = sorted({"async" if n.endswith("async") else "sync" for n in self.chunks})
        loop = _loop(self.group)
        on = f" on {loop}" if loop else ""
        return f"{', '.join(names)} ({' and '.join(modes)}{on})"


def _turn_runs(results: dict[str, Any], section: str) -> list[dict[str, Any]]:
    """Each run of a section whose clients take turns stream by stream ("ttfc
    alternating", "one request alternating"): client -> its rounds' medians."""
    return [run.get("clients") or {} for run in runs(results, section, TOGETHER)]


def _rounds(results: dict[str, Any], section: str, key: str, name: str) -> Spread | None:
    """``name``'s figure ``key``, round by round, from the runs of ``section``."""
    return Spread.of(
        [
            value
            for clients in _turn_runs(results, section)
            for value in clients.get(name, {}).get(key, [])
        ]
    )


def ttfc_rounds(results: dict[str, Any], name: str) -> Spread | None:
    """``name``'s warm time to first chunk in ms, round by round, taking turns."""
    return _rounds(results, "ttfc alternating", "ttfc_ms", name)


def request_rounds(results: dict[str, Any], name: str) -> Spread | None:
    """``name``'s CPU µs for one request of the shortest stream, round by round,
    taking turns."""
    return _rounds(results, "one request alternating", "us_per_request", name)


def _turns_ratio(
    results: dict[str, Any], section: str, key: str, top: str, bottom: str
) -> Spread | None:
    """``top``'s figure ``key`` over ``bottom``'s, round by round, from the runs of
    ``section`` (each round's figure is a median of streams)."""
    ratios = []
    for clients in _turn_runs(results, section):
        if top in clients and bottom in clients:
            pairs = zip(clients[top][key], clients[bottom][key], strict=False)
            ratios += [ours / floor for ours, floor in pairs if floor]
    return Spread.of(ratios)


def ttfc_ratio(results: dict[str, Any], top: str, bottom: str) -> Spread | None:
    """``top``'s warm time to first chunk over ``bottom``'s, taking turns."""
    return _turns_ratio(results, "ttfc alternating", "ttfc_ms", top, bottom)


def request_ratio(results: dict[str, Any], top: str, bottom: str) -> Spread | None:
    """``top``'s CPU time for one request of the shortest stream over ``bottom``'s,
    taking turns request by request."""
    return _turns_ratio(results, "one request alternating", "us_per_request", top, bottom)


def ttfc_pairs(results: dict[str, Any], top: str, bottom: str) -> Spread | None:
    """``top``'s warm time to first chunk over ``bottom``'s in fresh processes, run by
    run of the "ttfc pairs" section, where each run of ``top`` is followed by one of
    ``bottom``."""
    pairs = zip(runs(results, "ttfc pairs", top), runs(results, "ttfc pairs", bottom), strict=False)
    return Spread.of(
        [
            ours["ttfc_ms"] / floor["ttfc_ms"]
            for ours, floor in pairs
            if "ttfc_ms" in ours and floor.get("ttfc_ms")
        ]
    )


def ttfc_note(results: dict[str, Any]) -> str:
    """The native clients and the raw floor taking turns, stream by stream."""
    parts = []
    for native, floor in ((NATIVE_SYNC, FLOOR_SYNC), (NATIVE_ASYNC, FLOOR_ASYNC)):
        ours, theirs = ttfc_rounds(results, native), ttfc_rounds(results, floor)
        ratio = ttfc_ratio(results, native, floor)
        if ours is None or theirs is None or ratio is None:
            continue
        parts.append(
            f"{native} {fmt(ours.median, 3)} ms against {fmt(theirs.median, 3)} ms, "
            f"{fmt(ratio.median, 2)}{TIMES} ({fmt(ratio.low, 2)}{TIMES} {RANGE} "
            f"{fmt(ratio.high, 2)}{TIMES} over {len(ratio.values)} rounds)"
        )
    if not parts:
        return ""
    return (
        "Taking turns in one process (the native client and the raw floor, stream by "
        "stream: the sync pair in turn, the async pair in one event loop; each round's "
        "median of 100 streams, the median of the rounds): "
        + "; ".join(parts)
        + ". A stream here runs just after the other client's, on caches that client "
        "has just used; alone, a client runs after its own. Which of the two ways a "
        "ratio comes out higher in has changed from run to run of this machine, by more "
        "than a tenth: the targets show both."
    )


def floor_note(results: dict[str, Any]) -> str:
    """The raw floor alone, beside the native client, and with openai-python loaded."""
    loaded = Rounds(results, "sync").client(FLOOR_SYNC)
    native = Rounds(results, "native").client(FLOOR_SYNC)
    alone: float | None = median(results, "big", FLOOR_SYNC).get("us_per_chunk")
    if loaded is None or native is None:
        return ""
    text = "The raw floor (sync) spent "
    if alone:
        text += f"{alone:.2f} µs per chunk alone in a fresh process (median), "
    text += (
        f"{native.median:.2f} µs in the process with the native client, "
        f"{loaded.median:.2f} µs in the one with openai-python and pydantic as well; "
        f"the native client {_median_of(results, 'native', NATIVE_SYNC)} and "
        f"{_median_of(results, 'sync', NATIVE_SYNC)} µs in those two. The floor decodes "
        "a whole read (hundreds of events) into a list of msgspec Structs that the "
        "garbage collector tracks; they outlive the young collections that run "
        "meanwhile, are promoted, and bring on full collections, whose cost grows with "
        "every object in the process. deltastream's Structs are not tracked "
        "(`gc=False`) and the drop-in hands out one openai object at a time, so neither "
        "pays it. The native client's ratio to the floor is therefore read from the "
        "process without openai-python, as the native client's users run it"
    )
    if alone:
        text += (
            f"; even there the floor is {native.median / alone - 1:+.0%} over its fresh "
            "process, so that ratio reads lower than the fresh processes' by about as "
            "much, and the targets table shows both"
        )
    return text + "."


def _median_of(results: dict[str, Any], group: str, client: str) -> str:
    spread = Rounds(results, group).client(client)
    return fmt(spread.median if spread else None, 2)


def render(results: dict[str, Any]) -> str:
    groups = [Rounds(results, group) for group in GROUPS]
    groups = [g for g in groups if g]
    if not groups:
        return ""
    client_rows = []
    for rounds in groups:
        for name in GROUPS[rounds.group]:
            spread = rounds.client(name)
            client_rows.append(
                [
                    rounds.holds(),
                    f"**{name}**" if name.startswith("deltastream") else name,
                    f"{rounds.chunks.get(name, 0):,}",
                    fmt(spread.median if spread else None, 2),
                    f"{spread.low:.2f} {RANGE} {spread.high:.2f}" if spread else DASH,
                ]
            )
    ratio_rows = []
    for group, top, bottom in RATIOS:
        rounds = Rounds(results, group)
        spread = rounds.ratio(top, bottom) if rounds else None
        if spread is None:
            continue
        q1, q3 = spread.middle()
        each = ", ".join(f"{v:.2f}" for v in rounds.ratio_by_process(top, bottom))
        ratio_rows.append(
            [
                label(top, bottom, group),
                rounds.holds(),
                f"{spread.median:.2f}{TIMES}",
                f"{q1:.2f} {RANGE} {q3:.2f}",
                f"{spread.low:.2f} {RANGE} {spread.high:.2f}",
                each,
            ]
        )
    counts = "; ".join(
        f"{g.holds()}: {len(g.rounds)} rounds in {g.processes} "
        f"process{'es' if g.processes != 1 else ''}"
        for g in groups
    )
    return "\n\n".join(
        [
            "## The headline clients taking turns in one process",
            "One worker process per run holds several clients and runs each once per "
            "round on the 100,000-chunk stream (openai-python on 10,000 chunks: at "
            "~100 µs a chunk that is a second), each round starting one client further "
            "on, after one short warm-up stream each. CPU per chunk is "
            "`time.process_time()` around each stream. A ratio is taken within each "
            "round, where both clients ran within seconds of each other, then the "
            "median over the rounds is shown with the middle half of the rounds (the "
            "quartiles), the lowest and highest round, and the median of each process's "
            f"rounds on its own ({counts}). The machine's speed also moves within a "
            "round, so a single round's ratio can be far out; the median is what "
            "holds still, as the agreement of the processes' medians shows. "
            + " ".join(_drift(g) for g in groups),
            table(
                [
                    "process holds",
                    "client",
                    "chunks per stream",
                    "CPU µs/chunk, median of rounds",
                    "rounds",
                ],
                client_rows,
            ),
            table(
                [
                    "ratio of CPU per chunk",
                    "process holds",
                    "median of rounds",
                    "middle half of rounds",
                    f"lowest {RANGE} highest round",
                    "each process's median",
                ],
                ratio_rows,
            ),
            floor_note(results),
        ]
    )


def _drift(rounds: Rounds) -> str:
    """How far the floor's own figure moved, against how far its ratio to native did."""
    clients = GROUPS[rounds.group]
    native, floor = clients[0], next(c for c in clients if c in (FLOOR_SYNC, FLOOR_ASYNC))
    alone = rounds.client(floor)
    ratio = rounds.ratio(native, floor)
    if alone is None or ratio is None or len(alone.values) < 2:
        return ""
    return (
        f"With {rounds.holds()}, the raw floor's own CPU per chunk ranged over "
        f"{alone.high / alone.low - 1:.0%} (the machine's speed: the floor does not "
        f"change), the native client's ratio to it over {ratio.high / ratio.low - 1:.0%}."
    )
