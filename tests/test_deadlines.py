"""Deadline values and the watchdog, on real sockets (a socketpair)."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import httpx2
import pytest

from deltastream import Timeout
from deltastream.engine._deadlines import Watch, watchdog


def test_numbers_bound_every_phase_as_in_the_official_sdk() -> None:
    t = Timeout.of(7)
    assert (t.connect, t.first_token, t.idle, t.write, t.pool, t.total) == (7, 7, 7, 7, 7, None)


def test_httpx_timeouts_map_read_to_first_token_and_idle() -> None:
    t = Timeout.of(httpx2.Timeout(20.0, connect=2.0))
    assert (t.connect, t.first_token, t.idle) == (2.0, 20.0, 20.0)


def phases(t: Timeout) -> tuple[object, ...]:
    return (t.connect, t.first_token, t.idle, t.total, t.write, t.pool)


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        (lambda: Timeout(10.0), (10.0, 10.0, 10.0, None, 10.0, 10.0)),
        (lambda: Timeout(60.0, connect=5.0), (5.0, 60.0, 60.0, None, 60.0, 60.0)),
        (lambda: Timeout(None), (None,) * 6),
        (lambda: Timeout(None, idle=3.0), (None, None, 3.0, None, None, None)),
        (
            lambda: Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0),
            (1.0, 2.0, 2.0, None, 3.0, 4.0),
        ),
        (lambda: Timeout(read=9.0, idle=1.0), (5.0, 9.0, 1.0, None, 30.0, 300.0)),
        (lambda: Timeout((1.0, 2.0, 3.0, 4.0)), (1.0, 2.0, 2.0, None, 3.0, 4.0)),
        (lambda: Timeout(httpx2.Timeout(8.0, read=2.0)), (8.0, 2.0, 2.0, None, 8.0, 8.0)),
        (lambda: Timeout(Timeout(total=4.0), idle=1.0), (5.0, 300.0, 1.0, 4.0, 30.0, 300.0)),
    ],
    ids=[
        "seconds",
        "seconds-and-one",
        "none",
        "none-and-one",
        "four",
        "read",
        "tuple",
        "httpx",
        "ours",
    ],
)
def test_httpx_timeout_forms_build_the_same_phases(made: Any, expected: tuple[object, ...]) -> None:
    """Code written for httpx or openai builds ``Timeout`` as it builds theirs."""
    assert phases(made()) == expected


def test_a_copy_keeps_comments_count_unless_told() -> None:
    counting = Timeout(comments_count=True)
    assert Timeout(counting).comments_count
    assert not Timeout(counting, comments_count=False).comments_count
    assert Timeout(counting) == counting


def test_defaults_suit_llm_streams() -> None:
    t = Timeout.of(None)
    assert t == Timeout()
    assert (t.connect, t.first_token, t.idle, t.total) == (5.0, 300.0, 120.0, None)
    # Reading the headers is bounded by first_token; a body whose socket the watchdog
    # cannot reach gets a backstop above it.
    assert t.transport().read == 300.0
    assert t.body_read() == 301.0


@pytest.mark.parametrize(
    ("timeout", "first_at", "last_at", "expected"),
    [
        (Timeout(first_token=10, idle=2), None, 0.0, (10.0, "first_token", 10)),
        (Timeout(first_token=10, idle=2), 1.0, 5.0, (7.0, "idle", 2)),
        (Timeout(first_token=10, idle=2, total=6), 1.0, 5.0, (6.0, "total", 6)),
        (Timeout(first_token=None, idle=None, total=None), None, 0.0, None),
        (Timeout(first_token=None, idle=3), None, 0.0, None),
    ],
)
def test_the_earliest_deadline_in_force(
    timeout: Timeout,
    first_at: float | None,
    last_at: float,
    expected: tuple[float, str, float] | None,
) -> None:
    watch = Watch(timeout, 0.0, None)
    watch.first_at = first_at
    watch.last_at = last_at
    assert watch.next_deadline() == expected


def test_the_watchdog_wakes_for_an_idle_deadline_earlier_than_first_token() -> None:
    # Regression: it slept towards first_token (100 s) and missed the idle one.
    reader, writer = socket.socketpair()
    with reader, writer:
        watch = Watch(Timeout(first_token=100, idle=0.2), time.monotonic(), reader)
        watchdog.watch(watch)
        watch.progress(time.monotonic())  # the first event arrived
        reader.settimeout(10)
        started = time.monotonic()
        assert reader.recv(10) == b""  # the watchdog shut the socket down
        assert time.monotonic() - started < 5
        assert watch.expired == ("idle", 0.2)


def test_a_first_event_after_the_idle_time_still_starts_the_idle_deadline() -> None:
    # The watchdog's first look (at started + idle) finds no event yet and moves its
    # entry on to first_token; an event after that must bring it back to idle.
    reader, writer = socket.socketpair()
    with reader, writer:
        watch = Watch(Timeout(first_token=100, idle=0.2), time.monotonic(), reader)
        watchdog.watch(watch)
        time.sleep(0.4)
        assert watch.expired is None
        assert watch.scheduled is not None
        assert watch.scheduled > time.monotonic() + 50
        watch.progress(time.monotonic())
        reader.settimeout(10)
        started = time.monotonic()
        assert reader.recv(10) == b""
        assert time.monotonic() - started < 5
        assert watch.expired == ("idle", 0.2)


def test_an_early_first_event_leaves_the_watchdogs_entry_alone() -> None:
    reader, writer = socket.socketpair()
    with reader, writer:
        watch = Watch(Timeout(first_token=100, idle=30), time.monotonic(), reader)
        watchdog.watch(watch)
        scheduled = watch.scheduled
        assert scheduled is not None  # idle, counted from the start
        watch.progress(time.monotonic())
        assert watch.scheduled == scheduled
        watchdog.unwatch(watch)


def test_an_unwatched_socket_is_never_touched() -> None:
    reader, writer = socket.socketpair()
    with reader, writer:
        watch = Watch(Timeout(first_token=0.05), time.monotonic(), reader)
        watchdog.watch(watch)
        watchdog.unwatch(watch)
        time.sleep(0.2)
        writer.sendall(b"still open")
        assert reader.recv(10) == b"still open"
        assert watch.expired is None


def test_entries_of_finished_watches_do_not_wake_the_watchdog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A client making many short requests leaves an entry per finished stream in the
    # heap. Each used to wake the thread when it came due; the thread now drops them
    # at its next look, due or not, and sleeps until a watch that is still on.
    wakes: list[float | None] = []
    wait = watchdog._cond.wait

    def counting(timeout: float | None = None) -> bool:
        wakes.append(timeout)
        return wait(timeout)

    reader, writer = socket.socketpair()
    with reader, writer:
        start = time.monotonic()
        for i in range(50):  # finished streams, their entries due 4 ms apart
            finished = Watch(Timeout(first_token=0.2 + i * 0.004), start, reader)
            watchdog.watch(finished)
            watchdog.unwatch(finished)
        monkeypatch.setattr(watchdog._cond, "wait", counting)
        on = Watch(Timeout(first_token=0.05), time.monotonic(), reader)
        watchdog.watch(on)  # comes due first: the thread looks then
        reader.settimeout(10)
        assert reader.recv(10) == b""  # it expired
        time.sleep(0.5)  # past every finished entry's time
    assert on.expired == ("first_token", 0.05)
    assert len(wakes) <= 5, wakes


def test_equal_to_httpxs_timeout_when_it_bounds_the_same() -> None:
    assert Timeout(60.0, connect=5.0) == httpx2.Timeout(60.0, connect=5.0)
    assert httpx2.Timeout(60.0, connect=5.0) == Timeout(60.0, connect=5.0)
    assert Timeout(None) == httpx2.Timeout(None)
    # what httpx's cannot say: reads bounded apart, a total, comments counted
    assert Timeout(5.0, idle=1.0) != httpx2.Timeout(5.0)
    assert Timeout(5.0, total=9.0) != httpx2.Timeout(5.0)
    assert Timeout(5.0, comments_count=True) != httpx2.Timeout(5.0)
    assert Timeout(5.0) != httpx2.Timeout(6.0)


class _Exploding:
    """A stream target whose shutdown fails in a way nothing expects."""

    def shutdown(self, how: int) -> None:
        raise RuntimeError("boom")


def test_a_watchdog_thread_that_dies_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # The thread is started by the first watch and then only checked for being None:
    # if it dies, it must say so, or no deadline would ever be enforced again.
    monkeypatch.setattr("threading.excepthook", lambda args: None)
    doomed = Watch(Timeout(first_token=0.01), time.monotonic(), _Exploding())
    watchdog.watch(doomed)
    deadline = time.monotonic() + 5
    while watchdog._thread is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watchdog._thread is None
    reader, writer = socket.socketpair()
    with reader, writer:
        watch = Watch(Timeout(first_token=0.05), time.monotonic(), reader)
        watchdog.watch(watch)
        reader.settimeout(10)
        assert reader.recv(10) == b""  # a new thread shut it down
        assert watch.expired == ("first_token", 0.05)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_enforces_deadlines() -> None:
    reader, writer = socket.socketpair()
    watchdog.watch(Watch(Timeout(first_token=60), time.monotonic(), reader))  # a thread runs
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread is not here
        code = 1
        try:
            child_reader, _child_writer = socket.socketpair()
            watch = Watch(Timeout(first_token=0.05), time.monotonic(), child_reader)
            watchdog.watch(watch)
            child_reader.settimeout(10)
            if child_reader.recv(10) == b"" and watch.expired == ("first_token", 0.05):
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    reader.close()
    writer.close()
    assert os.waitstatus_to_exitcode(status) == 0
