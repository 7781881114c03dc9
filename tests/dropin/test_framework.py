"""accelerate() on a framework's client: pydantic-ai builds its own AsyncOpenAI; made
to stream on deltastream's engine in place, the framework streams the same output,
event for event, and the engine's promises come with it (a cut stream is an error)."""

from __future__ import annotations

import openai
import pytest

import deltastream

pytest.importorskip("pydantic_ai")  # the `frameworks` extra (not on the oldest openai)

from pydantic_ai import Agent
from pydantic_ai.exceptions import ModelConnectionError
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings

PROMPT = "Write a story about a robot."


async def agent_events(base_url: str, *, accelerated: bool, fault: str | None = None) -> list[str]:
    provider = OpenAIProvider(base_url=base_url, api_key="sk-test")
    if accelerated:
        assert deltastream.accelerate(provider.client) is provider.client
    agent = Agent(OpenAIChatModel("gpt-4o-mini", provider=provider))
    events: list[str] = []
    try:
        headers = {} if fault is None else {"X-Deltastream-Fault": fault}
        settings: ModelSettings = {"extra_headers": headers}
        async with agent.run_stream_events(PROMPT, model_settings=settings) as stream:
            async for event in stream:
                events.append(repr(event))
    finally:
        await provider.client.close()
    return events


async def test_a_frameworks_stream_is_the_same_event_for_event(server_url: str) -> None:
    plain = await agent_events(server_url, accelerated=False)
    fast = await agent_events(server_url, accelerated=True)
    assert len(plain) > 50
    assert fast == plain


async def test_the_engines_promises_come_with_it(server_url: str) -> None:
    """A body that ends without [DONE]: openai-python hands the framework a cut answer
    as if it were whole; accelerated, the framework gets the error."""
    await agent_events(server_url, accelerated=False, fault="no-done")
    with pytest.raises(ModelConnectionError) as caught:  # pydantic-ai's, wrapping openai's
        await agent_events(server_url, accelerated=True, fault="no-done")
    error = caught.value.__cause__
    assert isinstance(error, deltastream.StreamTruncatedError)
    assert isinstance(error, openai.APIConnectionError)
    assert error.partial.choices[0].message.content.startswith("Once upon a time")
