"""Request starts are spread over the event loop's turns (engine/_pacing.py): a burst of
them cannot make one long turn that holds up every running stream. Pure asyncio: a
ticker counts the loop's turns, tasks record the turn in which they were let through."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine
from typing import Any

import httpx2
import openai
import pytest

import deltastream
from deltastream.engine._pacing import STARTS_PER_TURN, start_turn
from deltastream.transport import async_http_client


class Ticker:
    """Counts the loop's turns: a callback that queues itself for the next one."""

    def __init__(self) -> None:
        self.turn = 0
        self._handle: asyncio.Handle | None = None

    def start(self) -> None:
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_burst_of_starts_is_let_through_a_few_per_turn_in_order(loop_kind: str) -> None:
    starts = 5 * STARTS_PER_TURN + 3
    passed: list[tuple[int, int]] = []  # (task, turn)

    async def main() -> None:
        ticker = Ticker()
        ticker.start()

        async def one(index: int) -> None:
            await start_turn()
            passed.append((index, ticker.turn))

        await asyncio.gather(*(one(i) for i in range(starts)))
        ticker.stop()

    run(main(), loop_kind)
    assert [index for index, _ in passed] == list(range(starts))  # first come, first started
    per_turn = Counter(turn for _, turn in passed)
    assert max(per_turn.values()) == STARTS_PER_TURN
    assert len(per_turn) >= starts // STARTS_PER_TURN  # spread over that many turns at least


def test_a_lone_start_does_not_wait() -> None:
    async def main() -> bool:
        other_ran = False

        def other() -> None:
            nonlocal other_ran
            other_ran = True

        asyncio.get_running_loop().call_soon(other)
        await start_turn()
        return other_ran

    assert asyncio.run(main()) is False  # returned without giving the loop a turn


def test_lone_starts_one_a_turn_never_wait_nor_each_cost_a_callback() -> None:
    class CountingLoop(asyncio.SelectorEventLoop):
        callbacks = 0

        def call_soon(  # type: ignore[override]  # counts, then as asyncio's
            self, callback: Any, *args: Any, context: Any = None
        ) -> Any:
            CountingLoop.callbacks += getattr(callback, "__name__", "") == "_next_turn"
            return super().call_soon(callback, *args, context=context)

    async def main() -> int:
        waited = 0
        for _ in range(10 * STARTS_PER_TURN):
            await asyncio.sleep(0)  # a turn passes between starts, as between requests
            before = CountingLoop.callbacks
            coroutine = start_turn()
            try:
                coroutine.send(None)
            except StopIteration:
                pass  # returned at once
            else:
                waited += 1
                coroutine.close()
            assert CountingLoop.callbacks - before <= 1
        return waited

    loop = CountingLoop()
    try:
        assert loop.run_until_complete(main()) == 0
    finally:
        loop.close()
    # The gate's own resets: one per several starts, not one per start.
    assert 0 < CountingLoop.callbacks <= 10 * STARTS_PER_TURN // 4


def test_a_start_cancelled_while_waiting_leaves_the_others_their_turns() -> None:
    async def main() -> list[int]:
        done: list[int] = []

        async def one(index: int) -> None:
            await start_turn()
            done.append(index)

        tasks = [asyncio.create_task(one(i)) for i in range(3 * STARTS_PER_TURN)]
        await asyncio.sleep(0)  # all have asked; the first turn's are through
        tasks[STARTS_PER_TURN + 1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return done

    done = asyncio.run(main())
    assert len(done) == 3 * STARTS_PER_TURN - 1
    assert STARTS_PER_TURN + 1 not in done


def _client(face: str, url: str, http: httpx2.AsyncClient) -> Any:
    if face == "native":
        return deltastream.AsyncClient(base_url=url, api_key="k", http_client=http)
    if face == "drop-in":
        return deltastream.AsyncOpenAI(base_url=url, api_key="k", http_client=http)
    return deltastream.accelerate(openai.AsyncOpenAI(base_url=url, api_key="k", http_client=http))


@pytest.mark.parametrize("face", ["native", "drop-in", "accelerated"])
async def test_a_burst_of_real_requests_is_sent_a_few_per_turn(server_url: str, face: str) -> None:
    ticker = Ticker()
    ticker.start()
    sent_in: list[int] = []  # the turn in which each request went to the transport

    async def sent(request: httpx2.Request) -> None:
        sent_in.append(ticker.turn)

    http = async_http_client(event_hooks={"request": [sent], "response": []})
    client = _client(face, server_url, http)
    messages = [{"role": "user", "content": "hi"}]

    async def one() -> None:
        stream = await client.chat.completions.create(
            model="m", messages=messages, stream=True, max_tokens=2
        )
        async with stream:
            async for _ in stream:
                pass

    starts = 3 * STARTS_PER_TURN + 1
    await asyncio.gather(*(one() for _ in range(starts)))
    ticker.stop()
    await http.aclose()
    assert len(sent_in) == starts
    per_turn = Counter(sent_in)
    assert len(per_turn) >= starts // STARTS_PER_TURN  # spread, not all in one turn
    if face == "native":  # openai awaits between its hook and the send: turns may merge
        assert max(per_turn.values()) <= STARTS_PER_TURN


def test_outside_asyncio_nothing_is_paced() -> None:
    # Another event loop (trio) drives the coroutine with no asyncio loop running.
    for _ in range(2 * STARTS_PER_TURN):
        coroutine = start_turn()
        with pytest.raises(StopIteration):
            coroutine.send(None)


def run(coroutine: Coroutine[Any, Any, None], loop_kind: str) -> None:
    if loop_kind == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coroutine)
    else:
        asyncio.run(coroutine)
