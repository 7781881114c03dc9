"""Process plumbing: start the load server, run one job in a fresh worker process.

The server and the workers are pinned to different CPUs when there are two or more,
so the client under test has a core of its own and the server never competes with
it. Each job reports, besides the worker's own figures, what the server saw during
it: TCP connections that carried chat requests, and the server's CPU time.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .neighbour import busy_neighbour

__all__ = ["JobFailed", "LoadServer", "run_job"]

ROOT = Path(__file__).resolve().parent.parent


def _cpus() -> tuple[int | None, int | None]:
    """(server CPU, client CPU), or Nones on a single-CPU machine."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[-1], cpus[0]


SERVER_CPU, CLIENT_CPU = _cpus()


_TICK = os.sysconf("SC_CLK_TCK")


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (None off Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10])  # already counted in user and nice
    return (sum(fields) - idle - guest) / _TICK


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class JobFailed(RuntimeError):
    pass


class LoadServer:
    """``python -m bench.server`` as a child process; it stops when its stdin closes."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "bench.server"]
        if SERVER_CPU is not None:
            command += ["--cpu", str(SERVER_CPU)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            self.close()
            raise RuntimeError(f"the load server did not start (said {line!r})")
        self.port = int(line[1])

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=30) as reply:
            stats: dict[str, Any] = json.load(reply)
        return stats

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LoadServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def worker_command(job: dict[str, Any]) -> list[str]:
    job = dict(job)
    if CLIENT_CPU is not None:
        job["cpu"] = CLIENT_CPU
    return [sys.executable, "-m", "bench.worker", json.dumps(job)]


def wait_for_quiet(limit: float = 30.0, threshold: float = 0.5, probe: float = 0.2) -> float:
    """Wait (at most ``limit`` s) until other processes use under ``threshold`` of a core.

    Other people's test suites on a shared machine would otherwise land in the numbers.
    Returns the seconds waited.
    """
    waited = 0.0
    while waited < limit:
        before = _busy_cpu_s()
        time.sleep(probe)
        after = _busy_cpu_s()
        if before is None or after is None or (after - before) / probe < threshold:
            break
        waited += probe
    return waited


def run_job(server: LoadServer, job: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run one job in a fresh worker, once the machine is quiet; add the server's view.

    ``"neighbour": true`` in the job runs it beside a process that spins on the
    worker's CPU (bench/neighbour.py); its CPU time is not the worker's.
    """
    if not server.alive():
        raise JobFailed("the load server has exited")
    job = dict(job)
    neighbour = job.pop("neighbour", False)
    waited = wait_for_quiet()
    before = server.stats()
    with busy_neighbour(CLIENT_CPU) if neighbour else contextlib.nullcontext():
        busy, children, started = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()
        try:
            done = subprocess.run(
                worker_command(job | {"port": server.port}),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise JobFailed(f"no answer in {timeout:.0f} s") from exc
        elapsed = time.perf_counter() - started
        worker_cpu = _children_cpu_s() - children
    busy_after = _busy_cpu_s()
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        raise JobFailed(f"exit {done.returncode}: {' | '.join(tail)}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    after = server.stats()
    result["connections"] = after["chat_connections"] - before["chat_connections"]
    result["server_cpu_s"] = after["cpu_s"] - before["cpu_s"]
    result["process_s"] = elapsed
    result["waited_for_quiet_s"] = waited
    if neighbour:
        # Reaped when the block ended: the children's CPU time now includes it.
        result["neighbour_cpu_pct"] = (_children_cpu_s() - children - worker_cpu) / elapsed * 100
    if busy is not None and busy_after is not None:
        # CPU that neither the worker nor the server used: other processes on the
        # machine (and this harness, which sleeps meanwhile; and the busy neighbour, when
        # the job asked for one). High values mean noise.
        others = busy_after - busy - worker_cpu - result["server_cpu_s"]
        result["other_cpu_pct"] = max(0.0, others) / elapsed * 100
    return result
