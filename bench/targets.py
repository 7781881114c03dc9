"""The "Targets" table: the roadmap's targets (issues 7, 15 and 19) against a run's
figures.

A CPU target has two measurements: the fresh-process runs (each client alone; the
median, and the same figure over each client's fastest run) and, where the clients
took turns in one process, the median over those rounds with the lowest and highest
round. The verdict is taken on the in-process median when there is one (the two
clients of a ratio ran seconds apart, not minutes), else on the fresh-process median;
when some rounds land on the other side of the target, the result says how many. A
target in µs rather than a ratio still moves with the machine's speed: rounds only
spread its noise, they do not cancel it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .alternation import Rounds, request_ratio, ttfc_pairs, ttfc_ratio
from .clients import (
    DROPIN_ASYNC,
    DROPIN_SYNC,
    FLOOR_ASYNC,
    FLOOR_SYNC,
    NATIVE_ASYNC,
    NATIVE_NO_RETRIES,
    NATIVE_SYNC,
    OPENAI_SYNC,
)
from .figures import DASH, RANGE, TIMES, Spread, fmt, median, per_run, table

__all__ = ["render"]


@dataclass(frozen=True)
class CpuTarget:
    """``top``'s CPU per chunk, over ``bottom``'s if there is one."""

    label: str
    section: str  # the fresh-process section
    top: str
    bottom: str | None
    wanted: float | None  # None: recorded, no target
    below: bool  # the figure must stay at or below ``wanted``
    group: str  # which alternating rounds hold the same figure (see alternation.GROUPS)

    def wanted_text(self) -> str:
        if self.wanted is None:
            return "recorded"
        unit = TIMES if self.bottom else " µs"
        return f"{'≤' if self.below else '≥'} {self.wanted:g}{unit}"

    def show(self, value: float | None) -> str:
        if value is None:
            return DASH
        return f"{value:.2f}{TIMES}" if self.bottom else f"{value:.2f} µs"

    def fresh(self, results: dict[str, Any], pick: str) -> float | None:
        """The fresh-process figure from each client's median run (``pick="median"``) or
        from each one's fastest run (``"fastest"``)."""

        def us(client: str) -> float | None:
            if pick == "median":
                value: float | None = median(results, self.section, client).get("us_per_chunk")
                return value
            return min(per_run(results, self.section, client, "us_per_chunk"), default=None)

        top = us(self.top)
        if self.bottom is None:
            return top
        bottom = us(self.bottom)
        return top / bottom if top and bottom else None

    def rounds(self, results: dict[str, Any]) -> Spread | None:
        rounds = Rounds(results, self.group)
        if not rounds:
            return None
        if self.bottom is None:
            return rounds.client(self.top)
        return rounds.ratio(self.top, self.bottom)

    def row(self, results: dict[str, Any]) -> list[str] | None:
        fresh, fastest = self.fresh(results, "median"), self.fresh(results, "fastest")
        rounds = self.rounds(results)
        if fresh is None and rounds is None:
            return None
        return [
            self.label,
            self.wanted_text(),
            f"{self.show(fresh)} ({self.show(fastest)})",
            _spread(rounds, self.show),
            self.verdict(fresh, rounds),
        ]

    def verdict(self, fresh: float | None, rounds: Spread | None) -> str:
        if self.wanted is None:
            return DASH
        return _verdict(self.wanted, self.below, fresh, rounds)


def _spread(figures: Spread | None, show: Callable[[float], str]) -> str:
    """The median of several measurements (rounds, or fresh pairs), then their lowest
    and highest."""
    if figures is None:
        return DASH
    return f"{show(figures.median)} ({show(figures.low)} {RANGE} {show(figures.high)})"


def _verdict(wanted: float, below: bool, fresh: float | None, rounds: Spread | None) -> str:
    """Read on the in-process median when there is one, else on the fresh-process one."""

    def meets(value: float) -> bool:
        return value <= wanted if below else value >= wanted

    value = rounds.median if rounds is not None else fresh
    if value is None:
        return DASH
    met = "met" if meets(value) else "not met"
    if rounds is None:
        return met if meets(value) else f"**{met}**"
    total = len(rounds.values)
    missed = rounds.beyond(wanted, below)
    other = missed if meets(value) else total - missed
    counted = f"{other} of {total} rounds {'not' if meets(value) else 'met'}"
    if fresh is not None and meets(fresh) != meets(value):
        # The two ways disagree: say so first, and let neither pass for the answer.
        fresh_met = "met" if meets(fresh) else "not met"
        return f"**split**: in one process {met} ({counted}); fresh processes {fresh_met}"
    text = met if meets(value) else f"**{met}**"
    return f"{text}; {counted}" if other else text


CPU_TARGETS = [
    CpuTarget(
        "native sync, long stream: CPU per chunk over the raw floor's",
        "big",
        NATIVE_SYNC,
        FLOOR_SYNC,
        1.2,
        True,
        "native",
    ),
    CpuTarget(
        "native async, long stream: over the async raw floor's",
        "big",
        NATIVE_ASYNC,
        FLOOR_ASYNC,
        1.2,
        True,
        "native",
    ),
    CpuTarget(
        "native async on uvloop, long stream: over the async raw floor's on uvloop",
        "big on uvloop",
        NATIVE_ASYNC,
        FLOOR_ASYNC,
        1.2,
        True,
        "uvloop",
    ),
    CpuTarget(
        "sync, long stream: openai-python's CPU per chunk over native's",
        "big",
        OPENAI_SYNC,
        NATIVE_SYNC,
        30,
        False,
        "sync",
    ),
    CpuTarget(
        "drop-in sync, long stream: CPU per chunk",
        "big",
        DROPIN_SYNC,
        None,
        6,
        True,
        "sync",
    ),
    CpuTarget(
        "sync, long stream: openai-python's CPU per chunk over the drop-in's",
        "big",
        OPENAI_SYNC,
        DROPIN_SYNC,
        20,
        False,
        "sync",
    ),
    CpuTarget(
        "drop-in async, long stream: CPU per chunk",
        "big",
        DROPIN_ASYNC,
        None,
        None,
        True,
        "async",
    ),
    CpuTarget(
        "native sync, 1,000 streams of 100 chunks: over the raw floor's",
        "many",
        NATIVE_SYNC,
        FLOOR_SYNC,
        3,
        True,
        "",  # not measured in one process
    ),
]


def _check(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _other_rows(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for client in (NATIVE_SYNC, NATIVE_ASYNC, DROPIN_SYNC, DROPIN_ASYNC):
        connections = median(results, "ttfc", client).get("connections")
        if connections is not None:
            rows.append(
                [
                    f"{client}: TCP connections for 100 sequential streams",
                    "1",
                    f"{connections:.0f}",
                    DASH,
                    _check(connections == 1),
                ]
            )
    rows += _request_rows(results)
    c1000 = median(results, "c1000", NATIVE_ASYNC)
    if c1000:
        rows.append(
            [
                "native async, 1,000 paced streams: client CPU, % of one core (steady; whole run)",
                "≤ 15",
                f"{fmt(c1000['steady_cpu_pct'])}; {fmt(c1000['cpu_pct'])}",
                DASH,
                _check(c1000["steady_cpu_pct"] <= 15),
            ]
        )
        rows.append(
            [
                "native async, 1,000 paced streams: added latency p99 ms, every chunk",
                "≤ 20",
                fmt(c1000["latency_p99_ms"]),
                DASH,
                _check(c1000["latency_p99_ms"] <= 20),
            ]
        )
        later = c1000.get("later_p99_ms")
        if later is not None:
            rows.append(
                [
                    "... after each stream's first chunk",
                    "≤ 20",
                    fmt(later),
                    DASH,
                    _check(later <= 20),
                ]
            )
        for key, entry in results["c1000"].items():
            variant = key.removeprefix(f"{NATIVE_ASYNC} ")
            other = entry.get("median")
            if variant != key and other:
                rows.append(
                    [
                        f"... every chunk, {variant}",
                        "≤ 20",
                        fmt(other["latency_p99_ms"]),
                        DASH,
                        _check(other["latency_p99_ms"] <= 20),
                    ]
                )
    c10k = median(results, "c10k", NATIVE_ASYNC)
    if c10k:
        floor = median(results, "c10k", FLOOR_ASYNC).get("kb_per_stream")
        rows.append(
            [
                "native async, 10,000 open streams: client memory per stream, KiB (peak RSS "
                f"growth; the async raw floor: {fmt(floor)})",
                "≤ 10",
                fmt(c10k["kb_per_stream"]),
                DASH,
                _check(c10k["kb_per_stream"] <= 10),
            ]
        )
    for section, client, label in (
        ("c10k", NATIVE_ASYNC, ""),
        ("c10k busy", NATIVE_ASYNC, " beside a busy process"),
        ("c10k busy", NATIVE_NO_RETRIES, " beside a busy process, max_retries=0"),
    ):
        m = median(results, section, client)
        if m:
            rows.append(
                [
                    f"native async, 10,000 streams at 1 chunk/s{label}: completed, errors",
                    "10,000, 0",
                    f"{m['completed']:,.0f}, {m['errors']:,.0f}",
                    DASH,
                    _check(m["completed"] == m["streams"] and m["errors"] == 0),
                ]
            )
    return rows


def _ratio_row(
    label: str,
    wanted: float,
    top: float | None,
    bottom: float | None,
    rounds: Spread | None = None,
    pairs: Spread | None = None,
) -> list[str]:
    """A ratio target measured in fresh processes (given ``pairs``, run by run) and,
    given ``rounds``, in one."""
    if pairs is not None:
        value: float | None = pairs.median
        shown = _spread(pairs, _times)
    else:
        value = top / bottom if top and bottom else None
        shown = DASH if value is None else _times(value)
    in_process = _spread(rounds, _times)
    return [label, f"≤ {wanted:g}{TIMES}", shown, in_process, _verdict(wanted, True, value, rounds)]


def _times(value: float) -> str:
    return f"{value:.2f}{TIMES}"


def _request_rows(results: dict[str, Any]) -> list[list[str]]:
    """Issue 19's per-request targets: a request, warm time to first chunk, a new client."""
    rows: list[list[str]] = []
    ratios = (  # section, figure, what it is, wanted, taking turns, fresh pairs
        (
            "one request",
            "us_per_chunk",
            "one request (the shortest stream), CPU",
            2,
            request_ratio,
            None,
        ),
        ("ttfc", "ttfc_ms", "warm time to first chunk (p50)", 1.5, ttfc_ratio, ttfc_pairs),
    )
    for section, key, what, wanted, in_turns, in_pairs in ratios:
        for client, floor, mode in (
            (NATIVE_SYNC, FLOOR_SYNC, "sync"),
            (NATIVE_ASYNC, FLOOR_ASYNC, "async"),
        ):
            ours = median(results, section, client).get(key)
            if ours is not None:
                rows.append(
                    _ratio_row(
                        f"native {mode}, {what}: over the raw floor's",
                        wanted,
                        ours,
                        median(results, section, floor).get(key),
                        in_turns(results, client, floor),
                        None if in_pairs is None else in_pairs(results, client, floor),
                    )
                )
    for client, face in ((NATIVE_SYNC, "native"), (DROPIN_SYNC, "drop-in")):
        made = median(results, "new client", client).get("new_client_ms")
        if made is not None:
            rows.append(
                [
                    f"{face} sync: a new client, ms (built and closed, p50)",
                    "≤ 1",
                    fmt(made, 3),
                    DASH,
                    _check(made <= 1),
                ]
            )
    return rows


def render(results: dict[str, Any]) -> str:
    rows = [row for target in CPU_TARGETS if (row := target.row(results))]
    rows += _other_rows(results)
    if not rows:
        return ""
    header = [
        "target",
        "wanted",
        "fresh processes: median (fastest runs)",
        f"in one process: median (lowest {RANGE} highest round)",
        "result",
    ]
    return "\n\n".join(
        [
            "## Targets",
            "The roadmap's targets (issues 7, 15 and 19) against this run; why a target "
            "is not met, and what stands in the way, is under “Where the time goes”. CPU "
            "figures are "
            "measured twice. Fresh processes: each client alone in its own process, "
            "the median of the runs, and in brackets the same figure over each "
            "client's fastest run. In one process: the clients taking turns, round by "
            "round (see “The headline clients taking turns in one process”), the "
            "median over the rounds and the lowest and highest round: a ratio taken "
            "within a round is far less moved by the machine's speed, which varies by "
            f"as much as 1.5{TIMES} between runs. The native client's ratios to the raw "
            "floor come from the process that holds only those two (see there why). "
            "Time to first chunk in fresh processes: each run of the native client is "
            "followed at once by one of the floor, and the figure is the median of "
            "those pairs' ratios, with the lowest and highest pair. The "
            "result is read from the in-process median "
            "where there is one, else from the fresh-process median, and says how many "
            "rounds fell on the other side; “split” when the two ways disagree (each "
            "has a known bias, told where its figures are shown). “recorded”: no "
            "target, the figure is shown for reference.",
            table(header, rows),
        ]
    )
