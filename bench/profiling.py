"""Where deltastream's time goes: a sampling profile of one benchmark job.

py-spy samples the worker from outside (no instrumentation, so the shares are not
skewed toward small functions the way cProfile skews them). Without py-spy, cProfile
runs inside the worker instead: ``python -m bench.profiling '<job as JSON>'``.

Samples are attributed two ways: by function (self time, all lines of a function
together) and by layer: the package of the innermost frame, where a standard-library
frame (contextlib, socket, re...) counts for the nearest caller that is not one.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from .harness import ROOT, LoadServer, wait_for_quiet, worker_command

__all__ = ["LAYERS", "collect", "layer_of"]

# (layer, how its frames' file names start), innermost layers first
LAYERS = [
    ("deltastream engine/_sse.py (SSE parsing)", "deltastream/engine/_sse.py"),
    ("deltastream engine/_decode.py (msgspec decode)", "deltastream/engine/_decode.py"),
    ("deltastream engine/_accumulate.py", "deltastream/engine/_accumulate.py"),
    ("deltastream engine/_protocol.py (per-event loop)", "deltastream/engine/_protocol.py"),
    ("deltastream engine/_streams.py (Stream shell)", "deltastream/engine/_streams.py"),
    ("deltastream dropin/ (openai's types, by pydantic-core)", "deltastream/dropin/"),
    ("deltastream transport/_h1.py (HTTP/1.1 framing)", "deltastream/transport/_h1.py"),
    ("deltastream transport (sockets, pool)", "deltastream/transport/_sync.py"),
    ("deltastream async transport (protocol, pool)", "deltastream/transport/_async.py"),
    ("deltastream other", "deltastream/"),
    ("h11 (HTTP/1.1 parsing)", "h11/"),
    ("httpcore2 (connection, reads)", "httpcore2/"),
    ("httpx2 (response iterators)", "httpx2/"),
    ("anyio", "anyio/"),
    ("openai-python", "openai/"),
    ("pydantic", "pydantic/"),
    ("benchmark loop", "bench/"),
]
_IDLE = ("Condition.wait", "Event.wait", "select (selectors.py", "EpollSelector.select")


def layer_of(filename: str) -> str | None:
    for name, prefix in LAYERS:
        if prefix in filename:
            return name
    return None


def _layer_of_stack(stack: tuple[str, ...]) -> str:
    """The layer of the innermost frame that has one; the event loop's own frames
    (reached from the benchmark only through asyncio) count as the event loop."""
    through_loop = False
    for frame in reversed(stack):
        filename = _parse_frame(frame)[1]
        layer = layer_of(filename)
        if layer == "benchmark loop" and through_loop:
            return "asyncio event loop"
        if layer is not None:
            return layer
        through_loop = through_loop or "asyncio/" in filename or "selectors.py" in filename
    return "other"


def _parse_frame(frame: str) -> tuple[str, str]:
    """``'Cls.func (pkg/file.py:12)'`` -> (``'Cls.func'``, ``'pkg/file.py'``)."""
    function, _, where = frame.rpartition(" (")
    return function, where.rstrip(")").rsplit(":", 1)[0]


def _analyse(stacks: Counter[tuple[str, ...]], focus: str) -> dict[str, Any]:
    functions: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for stack, count in stacks.items():
        if not any(focus in frame for frame in stack):
            continue  # other threads, imports, setup
        if any(idle in stack[-1] for idle in _IDLE):
            continue
        total += count
        function, filename = _parse_frame(stack[-1])
        functions[f"{function} ({filename})"] += count
        for name in {"{} ({})".format(*_parse_frame(frame)) for frame in stack}:
            inclusive[name] += count
        layers[_layer_of_stack(stack)] += count
    return {
        "samples": total,
        "functions": [[name, count / total] for name, count in functions.most_common(20)],
        "layers": [[name, count / total] for name, count in layers.most_common()],
        "inclusive": [[name, count / total] for name, count in inclusive.most_common(80)],
    }


def _py_spy(job: dict[str, Any], server: LoadServer, rate: int) -> Counter[tuple[str, ...]]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        command = [py_spy, "record", "--format", "raw", "--rate", str(rate), "-o", str(out)]
        command += ["--", *worker_command(job | {"port": server.port})]
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True, timeout=600)
        stacks: Counter[tuple[str, ...]] = Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def _cprofile_in_worker(job: dict[str, Any], server: LoadServer) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.profiling", json.dumps(job | {"port": server.port})]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def collect(server: LoadServer, job: dict[str, Any], focus: str) -> dict[str, Any]:
    """Profile ``job``; keep the samples whose stack holds a frame matching ``focus``."""
    wait_for_quiet()
    if shutil.which("py-spy") or Path(sys.executable).with_name("py-spy").exists():
        try:
            result = _analyse(_py_spy(job, server, rate=500), focus)
            return result | {"tool": "py-spy (sampling, 500 Hz)", "job": job}
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"py-spy failed ({exc}); falling back to cProfile", file=sys.stderr)
    return _cprofile_in_worker(job, server) | {"tool": "cProfile (tottime)", "job": job}


def _main() -> None:
    """The cProfile fallback: run the job here; print self time by function and layer."""
    from .worker import run_job

    job = json.loads(sys.argv[1])
    profiler = cProfile.Profile()
    profiler.runcall(run_job, job)
    # {(file, line, function): (calls, primitive calls, self time, cumulative, callers)}
    stats: dict[Any, Any] = getattr(pstats.Stats(profiler), "stats")  # noqa: B009
    functions: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for (filename, _line, function), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        functions[f"{function} ({Path(filename).name})"] += tottime
        layers[layer_of(filename) or "other (stdlib, C functions)"] += tottime
    total = sum(functions.values()) or 1.0
    print(
        json.dumps(
            {
                "samples": None,
                "functions": [[k, v / total] for k, v in functions.most_common(20)],
                "layers": [[k, v / total] for k, v in layers.most_common()],
                "inclusive": [],
            }
        )
    )


if __name__ == "__main__":
    _main()
