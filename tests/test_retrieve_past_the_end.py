"""``responses.retrieve(id, stream=True, starting_after=N)`` with N at or past the last
event of a finished response: the server answers with an empty stream, and so does the
client (as openai's does), on both faces, sync and async, with retries left or none
(max_retries=0: nothing to resume with, and still no error); over real sockets to the
local server. An empty answer for a response still running is resumed as before."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

import deltastream

PAST_THE_END = 10_000


def finished_response(client: Any) -> str:
    """The id of a background response the server has finished."""
    created = client.responses.create(model="m", input="Hello!", background=True)
    deadline = time.monotonic() + 20
    while client.responses.retrieve(created.id).status != "completed":
        assert time.monotonic() < deadline, "the background response never finished"
        time.sleep(0.05)
    return str(created.id)


@pytest.mark.parametrize("max_retries", [2, 0])
@pytest.mark.parametrize("face", ["native", "drop-in", "openai"])
def test_past_the_end_is_an_empty_stream(server_url: str, face: str, max_retries: int) -> None:
    make: Any = {
        "native": deltastream.Client,
        "drop-in": deltastream.OpenAI,
        "openai": openai.OpenAI,
    }[face]
    with make(base_url=server_url, api_key="sk-test", max_retries=max_retries) as client:
        response_id = finished_response(client)
        started = time.monotonic()
        stream = client.responses.retrieve(response_id, stream=True, starting_after=PAST_THE_END)
        assert list(stream) == []
        assert time.monotonic() - started < 2  # no retries and their waits
        # From the start, every event once, ending in the terminal one.
        events = list(client.responses.retrieve(response_id, stream=True, starting_after=0))
        assert events[-1].type == "response.completed"


@pytest.mark.parametrize("max_retries", [2, 0])
@pytest.mark.parametrize("face", ["native", "drop-in"])
async def test_past_the_end_is_an_empty_stream_async(
    server_url: str, face: str, max_retries: int
) -> None:
    sync_make: Any = deltastream.Client if face == "native" else deltastream.OpenAI
    with sync_make(base_url=server_url, api_key="sk-test") as sync_client:
        response_id = await asyncio.to_thread(finished_response, sync_client)
    make: Any = deltastream.AsyncClient if face == "native" else deltastream.AsyncOpenAI
    async with make(base_url=server_url, api_key="sk-test", max_retries=max_retries) as client:
        stream = await client.responses.retrieve(
            response_id, stream=True, starting_after=PAST_THE_END
        )
        assert [event async for event in stream] == []
