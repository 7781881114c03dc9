"""A busy neighbour: another process that keeps one CPU busy while a job runs.

Production clients rarely have a core to themselves. The neighbour spins on the CPU the
worker is pinned to (or anywhere, on a one-CPU machine), so the client under test gets
about half of its core, and its event loop falls behind the network: the condition in
which a connect deadline that counts loop time, not network time, fails connections
that were in fact made.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["busy_neighbour"]

_SPIN = """
import os, sys
if sys.argv[1] != "any":
    os.sched_setaffinity(0, {int(sys.argv[1])})
print("spinning", flush=True)
while True:
    pass
"""


@contextlib.contextmanager
def busy_neighbour(cpu: int | None) -> Iterator[None]:
    """A process spinning on ``cpu`` (any CPU if None) for the duration of the block."""
    spinner = subprocess.Popen(
        [sys.executable, "-c", _SPIN, "any" if cpu is None else str(cpu)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert spinner.stdout is not None
        spinner.stdout.readline()  # pinned and spinning before the job starts
        yield
    finally:
        spinner.kill()
        spinner.wait()
