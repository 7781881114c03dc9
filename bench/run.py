"""Run the benchmarks: ``python -m bench.run [--quick] [--runs N]``.

Every job runs ``--runs`` times (rounds interleave the clients, so drift over the run
touches them all alike) and each figure is the median. The results go to
``bench/results/latest.json``; ``docs/benchmarks.md`` and ``docs/benchmarks.png`` are
rewritten from them (``--no-docs`` leaves the docs alone).

``--quick`` leaves out the concurrency sections (~15-18 minutes instead of ~35).
``--only NAME`` runs that section alone (repeatable; the docs are left alone).

Besides the fresh process per job, the "alternating" sections run the headline clients
in one process, taking turns over several rounds: the ratio of two clients within a
round is measured at one machine speed (see ``scenario_alternate`` in ``worker.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import alternation, machine, profiling, report
from .alternation import TOGETHER
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
from .harness import ROOT, JobFailed, LoadServer, run_job
from .payload import MIN_CHUNKS

__all__ = ["SECTIONS", "Section", "main"]

SYNC = [NATIVE_SYNC, DROPIN_SYNC, OPENAI_SYNC, HTTPX2_SYNC, FLOOR_SYNC]
ASYNC = [NATIVE_ASYNC, DROPIN_ASYNC, OPENAI_ASYNC, HTTPX2_ASYNC, FLOOR_ASYNC]
SEQUENTIAL = [client for pair in zip(SYNC, ASYNC, strict=True) for client in pair]
LAYERS = [
    "layer: httpcore2 transport",
    "layer: own transport",
    "layer: + SSEDecoder",
    "layer: + ChunkStream",
]
# openai-python spends ~100 µs a chunk: a tenth of the stream is enough for its figure.
ALTERNATE_N_OF = {OPENAI_SYNC: 10_000, OPENAI_ASYNC: 10_000}
ALTERNATE_ROUNDS = 7


@dataclass(frozen=True)
class Section:
    """One table: the same job for each client. ``variants`` label extra parameters."""

    name: str
    clients: list[str]
    job: dict[str, Any]
    variants: dict[str, dict[str, Any]] = field(default_factory=lambda: {"": {}})
    concurrency: bool = False
    runs: int | None = None  # None: --runs
    extra_runs: int = 0  # on top of runs
    timeout: float = 300
    together: bool = False  # all the clients in one process, taking turns (one job)

    def count(self, runs: int) -> int:
        return (self.runs or runs) + self.extra_runs

    def jobs(self) -> list[tuple[str, dict[str, Any]]]:
        """(key in the results, job) for one run of this section."""
        found = []
        for variant, extra in self.variants.items():
            if self.together:
                key = f"{TOGETHER} {variant}".strip()
                found.append((key, self.job | extra | {"clients": self.clients}))
                continue
            for client in self.clients:
                found.append((f"{client} {variant}".strip(), self.job | extra | {"client": client}))
        return found


C10K = {"scenario": "concurrent", "streams": 10_000, "n": 5, "rate": 1.0, "deadline": 30}

# The headline figures get two more runs: on a shared machine one slow run in three
# moves a median of three by as much as the difference being measured.
SECTIONS = [
    Section("big", SEQUENTIAL, {"scenario": "stream", "streams": 1, "n": 100_000}, extra_runs=2),
    # The headline ratios again, the clients taking turns in one process: the two clients
    # of a round's ratio ran seconds apart, not minutes, so the machine's speed moves
    # them far less (see alternation.py).
    *(
        Section(
            f"alternating {group}",
            clients,
            {
                "scenario": "alternate",
                "n": 100_000,
                "rounds": ALTERNATE_ROUNDS,
                "n_of": ALTERNATE_N_OF,
            }
            | alternation.GROUP_JOBS.get(group, {}),
            together=True,
        )
        for group, clients in alternation.GROUPS.items()
    ),
    Section("many", SEQUENTIAL, {"scenario": "stream", "streams": 1000, "n": 100}, extra_runs=2),
    Section("ttfc", SEQUENTIAL, {"scenario": "ttfc", "streams": 100, "n": 10}),
    # Warm time to first chunk with the native client and the floor taking turns stream
    # by stream: a ratio within a round is not moved by the machine's speed between runs.
    Section(
        "ttfc alternating",
        alternation.GROUPS["native"],
        {"scenario": "ttfc_alternate", "rounds": 20, "streams": 100, "n": 10},
        together=True,
    ),
    # And in fresh processes, each native run followed at once by the floor's: a ratio
    # within such a pair is moved less by the machine's speed than one of two medians
    # whose runs lay many jobs apart ("ttfc" above).
    Section(
        "ttfc pairs",
        alternation.GROUPS["native"],
        {"scenario": "ttfc", "streams": 1000, "n": 10},
        extra_runs=4,
    ),
    # What a request costs besides its chunks: 1,000 of the shortest stream (role,
    # finish and usage chunks, no content).
    Section(
        "one request",
        [c for c in SEQUENTIAL if c not in (HTTPX2_SYNC, HTTPX2_ASYNC)],
        {"scenario": "stream", "streams": 1000, "n": MIN_CHUNKS},
        extra_runs=2,
    ),
    # The same request with the native client and the floor taking turns, request by
    # request: the floor's figure alone moves by half between fresh processes.
    Section(
        "one request alternating",
        alternation.GROUPS["native"],
        {
            "scenario": "ttfc_alternate",
            "measure": "cpu",
            "rounds": 20,
            "streams": 100,
            "n": MIN_CHUNKS,
        },
        together=True,
    ),
    Section(
        "new client",
        [NATIVE_SYNC, NATIVE_ASYNC, DROPIN_SYNC, DROPIN_ASYNC, OPENAI_SYNC, OPENAI_ASYNC],
        {"scenario": "new_client", "clients": 200},
    ),
    # The long stream on uvloop, the native client beside the async floor.
    Section(
        "big on uvloop",
        [NATIVE_ASYNC, FLOOR_ASYNC],
        {"scenario": "stream", "streams": 1, "n": 100_000, "loop": "uvloop"},
        extra_runs=2,
    ),
    Section(
        "accumulation",
        [NATIVE_SYNC, NATIVE_ASYNC, DROPIN_SYNC, DROPIN_ASYNC],
        {"scenario": "stream", "streams": 1, "n": 100_000},
        # Plain iteration again, in the same rounds: a ratio of runs made minutes apart
        # on this machine measures the machine as much as the consumer.
        variants={
            "plain iteration": {},
            "get_final_completion()": {"consumer": "final"},
            "text_deltas()": {"consumer": "text"},
        },
        extra_runs=2,
    ),
    # Peak memory of the partial result of a long stream of tiny deltas (issue 17).
    Section(
        "partial",
        [NATIVE_SYNC, DROPIN_SYNC],
        {"scenario": "partial", "n": 1_000_000},
        runs=1,
    ),
    # Layer figures are differences of close numbers: two more runs for steadier medians.
    Section(
        "layers",
        [*LAYERS, NATIVE_SYNC, DROPIN_SYNC, FLOOR_SYNC],
        {"scenario": "stream", "streams": 1, "n": 100_000, "framing": "coalesced"},
        extra_runs=2,
    ),
    Section(
        "layers per-event",
        LAYERS,
        {"scenario": "stream", "streams": 1, "n": 100_000},
        extra_runs=2,
    ),
    Section(
        "c1000",
        ASYNC,
        {"scenario": "concurrent", "streams": 1000, "n": 30, "rate": 3.0, "deadline": 60},
        # All at once is the hardest start; a server's streams arrive over time, and
        # production async servers often run uvloop.
        variants={
            "": {},
            "on uvloop": {"loop": "uvloop"},
            "started over 1 s": {"ramp": 1.0},
        },
        concurrency=True,
        timeout=180,
    ),
    Section(
        "c10k",
        [NATIVE_ASYNC, NATIVE_NO_RETRIES, *ASYNC[1:]],
        C10K,
        concurrency=True,
        runs=1,
        timeout=240,
    ),
    # The same beside another process that spins on the client's CPU (bench/neighbour.py):
    # the event loop falls seconds behind the network, and a connect deadline that counts
    # loop time fails connections the kernel had made.
    Section(
        "c10k busy",
        [NATIVE_ASYNC, NATIVE_NO_RETRIES],
        C10K | {"neighbour": True},
        concurrency=True,
        runs=1,
        timeout=240,
    ),
]


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [run for run in runs if "error" not in run]
    if not ok:
        return {}
    keys = [k for k, v in ok[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return {k: statistics.median(run[k] for run in ok) for k in keys}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _summary(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    if "clients" in result:  # clients taking turns: each one's median per round
        figures_of = next(iter(result["clients"].values()))
        key, digits, unit = ("ttfc_ms", 3, "ms to first chunk")
        if "us_per_chunk" in figures_of:
            key, digits, unit = ("us_per_chunk", 2, "µs/chunk")
        elif "us_per_request" in figures_of:
            key, digits, unit = ("us_per_request", 1, "µs CPU per request")
        return (
            ", ".join(
                f"{name} {statistics.median(figures[key]):.{digits}f}"
                for name, figures in result["clients"].items()
            )
            + f" {unit}"
        )
    for key, fmt in (
        ("us_per_chunk", "{:.2f} µs/chunk"),
        ("ttfc_ms", "ttfc {:.3f} ms"),
        ("new_client_ms", "new client {:.3f} ms"),
        ("latency_p50_ms", "p50 {:.1f} ms"),
    ):
        if key in result:
            text = fmt.format(result[key])
            if "errors" in result:
                text += f", {result['completed']} done, {result['errors']} errors"
            return text
    return "ok"


def run(server: LoadServer, sections: list[Section], runs: int) -> dict[str, Any]:
    """Rounds of every section's jobs; the results keyed by section, then client."""
    results: dict[str, dict[str, dict[str, Any]]] = {s.name: {} for s in sections}
    total = sum(s.count(runs) * len(s.jobs()) for s in sections)
    done = 0
    for round_ in range(max(s.count(runs) for s in sections)):
        for section in sections:
            if round_ >= section.count(runs):
                continue
            for key, job in section.jobs():
                try:
                    result = run_job(server, job, timeout=section.timeout)
                except JobFailed as exc:
                    result = {"error": str(exc)}
                entry = results[section.name].setdefault(key, {"runs": []})
                entry["runs"].append(result)
                done += 1
                _log(f"[{done}/{total}] {section.name}: {key}: {_summary(result)}")
    for section_results in results.values():
        for entry in section_results.values():
            entry["median"] = _median(entry["runs"])
    return results


def profiles(server: LoadServer, concurrency: bool) -> dict[str, Any]:
    big = SECTIONS[0].job
    jobs = {
        "sync": (big | {"client": NATIVE_SYNC}, "_sequential_sync"),
        "dropin": (big | {"client": DROPIN_SYNC}, "_sequential_sync"),
    }
    if concurrency:
        c1000 = next(s for s in SECTIONS if s.name == "c1000")
        c10k = next(s for s in SECTIONS if s.name == "c10k")
        jobs["async"] = (c1000.job | {"client": NATIVE_ASYNC}, "_concurrent")
        # the pool's trouble shows from the start: a shorter deadline profiles it as well
        job10k = c10k.job | {"client": NATIVE_ASYNC, "deadline": 15}
        jobs["async10k"] = (job10k, "_concurrent")
    found = {}
    for name, (job, focus) in jobs.items():
        _log(f"profiling {job['client']}: {job['scenario']} {job['streams']}x{job['n']}")
        found[name] = profiling.collect(server, job, focus)
    return found


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s sections in place of its own, and a record of when and
    at which commit those were measured."""
    merged = dict(base)
    merged["results"] = base["results"] | extra["results"]
    config = dict(base["config"])
    config["sections"] = base["config"]["sections"] | extra["config"]["sections"]
    merged["config"] = config
    merged["merged"] = [
        *base.get("merged", []),
        {
            "sections": list(extra["results"]),
            "started": extra["started"],
            "commit": extra["machine"]["commit"],
            "duration_s": extra["duration_s"],
        },
    ]
    return merged


_RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run deltastream's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="leave out concurrency")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile")
    parser.add_argument(
        "--only",
        action="append",
        choices=[s.name for s in SECTIONS],
        help="run only this section (repeatable); implies --no-docs and --no-profile",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="JSON (default: bench/results/latest.json, or partial.json for a run with --only, "
        "which must not overwrite the full run it may be merged into)",
    )
    parser.add_argument(
        "--into",
        type=Path,
        help="with --only: put this run's sections into that results file (a full run's) "
        "and rewrite the docs from it",
    )
    args = parser.parse_args(argv)
    sections = [s for s in SECTIONS if not (args.quick and s.concurrency)]
    if args.only:  # a partial run: its figures would leave the docs' other tables empty
        sections = [s for s in SECTIONS if s.name in args.only]
        args.no_docs = args.no_profile = True
    if args.out is None:
        args.out = _RESULTS / ("partial.json" if args.only else "latest.json")
    started = time.time()
    data: dict[str, Any] = {
        "machine": machine.describe(),
        "config": {
            "runs": args.runs,
            "quick": args.quick,
            "sections": {s.name: s.job | {"runs": s.count(args.runs)} for s in sections},
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
    }
    with LoadServer() as server:
        data["results"] = run(server, sections, args.runs)
        if not args.no_profile:
            data["profile"] = profiles(server, concurrency=not args.quick)
    data["duration_s"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1))
    _log(f"wrote {args.out}")
    took = data["duration_s"]
    if args.into:
        data = _merge(json.loads(args.into.read_text()), data)
        args.into.write_text(json.dumps(data, indent=1))
        _log(f"merged into {args.into}")
        args.no_docs = False
    if not args.no_docs:
        report.write(data, ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks.png")
        _log("wrote docs/benchmarks.md and docs/benchmarks.png")
    _log(f"took {took / 60:.1f} min")


if __name__ == "__main__":
    main()
