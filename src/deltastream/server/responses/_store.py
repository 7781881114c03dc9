"""Responses kept on the server: their events, their generation, and the bounds on both.

Rules:

- A response's generation runs as a task of its own, so a ``background=True`` response
  goes on when its client leaves and can be read again from any ``sequence_number``
  (:meth:`StoredResponse.follow`). A foreground one is cancelled when its stream's
  client leaves (:meth:`StoredResponse.cancel`).
- Events are kept as the SSE blocks that were sent, one per sequence number, so a
  resumed stream is byte for byte what the first one would have carried.
- Everything is bounded: one response's events (a response that outgrows
  ``MAX_RESPONSE_BYTES`` fails), the number of responses kept and their total bytes
  (the oldest finished ones are dropped first), their age, and the number generating at
  once (a 429 beyond it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Final

from .._body import Pause
from .._errors import APIError
from .._pieces import Piece
from .._wire import sse_event
from ._build import Event, ResponseBuilder

__all__ = ["ResponseStore", "StoredResponse"]

MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024

Message = dict[str, object]


class StoredResponse:
    def __init__(
        self,
        builder: ResponseBuilder,
        history: tuple[Message, ...],
        input: tuple[Message, ...],
        history_items: tuple[Message, ...] = (),
    ) -> None:
        self.builder = builder
        self.background = builder.request.background
        # store=false: kept only while it runs (counted, stopped at shutdown), never
        # found again, as OpenAI keeps no such response (a background one is kept).
        self.kept = builder.request.store or self.background
        #: The turns a later request with ``previous_response_id`` continues from.
        self.conversation: tuple[Message, ...] = (*history, *input)
        #: What ``input_items`` lists: the earlier turns' items, then this input's.
        self.input_items: tuple[Message, ...] = (*history_items, *builder.request.input_items)
        self.events: list[bytes] = []
        self.size = 0
        self.finished_at: float | None = None
        self.task: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._append(builder.start())

    @property
    def id(self) -> str:
        return self.builder.id

    def _append(self, events: list[Event]) -> None:
        for event in events:
            block = sse_event(event, event=str(event["type"]))
            self.events.append(block)
            self.size += len(block)
        wakeup, self._wakeup = self._wakeup, asyncio.Event()
        wakeup.set()

    def _finish(self) -> None:
        if self.finished_at is None:
            self.finished_at = time.monotonic()
            self.conversation = (*self.conversation, *self.builder.output_messages())

    @property
    def context_items(self) -> tuple[Message, ...]:
        """The items a response continuing from this finished one starts with: its
        input items, then its output (no longer changed once it is finished)."""
        return (*self.input_items, *self.builder.output)

    def run(self, pieces: AsyncIterator[Piece | Pause]) -> None:
        self.task = asyncio.ensure_future(self._produce(pieces))

    async def _produce(self, pieces: AsyncIterator[Piece | Pause]) -> None:
        try:
            self._append(self.builder.begin())
            async for piece in pieces:
                if self.builder.finished:
                    return  # cancelled meanwhile
                if isinstance(piece, Pause):
                    await asyncio.sleep(piece.seconds)
                    continue
                self._append(self.builder.feed(piece))
                if self.size > MAX_RESPONSE_BYTES:
                    limit = MAX_RESPONSE_BYTES // (1024 * 1024)
                    message = f"The response grew past the local server's {limit} MiB limit."
                    self._append(self.builder.fail(message))
                    return
            if not self.builder.finished:
                self._append(self.builder.end())
        except asyncio.CancelledError:
            if not self.builder.finished:
                self._append(self.builder.cancel("The response was cancelled."))
        except Exception as exc:  # the backend failed: the response says so, as OpenAI's do
            if not self.builder.finished:
                self._append(self.builder.fail(f"The local model failed: {exc}"))
        finally:
            self._finish()  # first: closing the pieces may be interrupted by a cancel
            if isinstance(pieces, AsyncGenerator):
                await pieces.aclose()

    def cancel(self, message: str) -> None:
        """End the response now (it keeps what it has); its stream gets an error event.
        A response that has finished is left as it is."""
        if self.builder.finished:
            return
        self._append(self.builder.cancel(message))
        self._finish()
        if self.task is not None:
            self.task.cancel()

    async def follow(self, after: int = -1) -> AsyncIterator[bytes]:
        """The event blocks after sequence number ``after``, as they come, to the end."""
        index = after + 1
        while True:
            wakeup = self._wakeup
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.builder.finished:
                return
            await wakeup.wait()

    async def wait(self) -> None:
        """Until the response has finished."""
        while not self.builder.finished:
            await self._wakeup.wait()


class ResponseStore:
    def __init__(
        self,
        *,
        max_responses: int = 256,
        max_bytes: int = 64 * 1024 * 1024,
        max_age: float = 3600.0,
        max_running: int = 32,
    ) -> None:
        self.max_responses = max_responses
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.max_running = max_running
        self._responses: OrderedDict[str, StoredResponse] = OrderedDict()

    def __len__(self) -> int:
        return len(self._responses)

    @property
    def size(self) -> int:
        return sum(stored.size for stored in self._responses.values())

    def _evict(self) -> None:
        now = time.monotonic()
        finished = [s for s in self._responses.values() if s.finished_at is not None]
        for stored in finished:  # oldest first: the dict keeps insertion order
            too_old = now - (stored.finished_at or now) > self.max_age
            too_many = len(self._responses) > self.max_responses
            if not stored.kept or too_old or too_many or self.size > self.max_bytes:
                del self._responses[stored.id]

    def admit(self) -> None:
        """Make room for one more response, or refuse it (429) when too many are running."""
        self._evict()
        running = sum(1 for s in self._responses.values() if s.finished_at is None)
        if running >= self.max_running:
            raise APIError(
                429,
                f"The local server is generating {running} responses already; retry shortly.",
                code="rate_limit_exceeded",
                headers={"retry-after": "1"},
            )

    def add(self, stored: StoredResponse) -> None:
        self._responses[stored.id] = stored
        self._evict()

    def discard(self, stored: StoredResponse) -> None:
        self._responses.pop(stored.id, None)

    def delete(self, response_id: str) -> None:
        """Forget a response (404 if it is not kept); one still generating stops."""
        stored = self.get(response_id)
        stored.cancel("The response was deleted.")
        self.discard(stored)

    def get(self, response_id: str) -> StoredResponse:
        self._evict()
        stored = self._responses.get(response_id)
        if stored is None or not stored.kept:
            raise APIError(404, f"Response with id '{response_id}' not found.", param="response_id")
        return stored

    async def aclose(self) -> None:
        """Stop every generation (the server is shutting down)."""
        tasks = [s.task for s in self._responses.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
