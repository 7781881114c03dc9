"""accelerate(): an openai client built elsewhere streams on deltastream's engine in
place, keeping its class, its subclass's behaviour and its copies'."""

from __future__ import annotations

from typing import Any

import openai
import pytest

import deltastream

PROMPT = "Write a story about a robot."


def test_accelerate_keeps_the_class_and_its_copies(server_url: str) -> None:
    client = openai.OpenAI(base_url=server_url, api_key="sk-test", max_retries=0)
    same = deltastream.accelerate(client)
    assert same is client
    assert isinstance(client, openai.OpenAI)
    assert type(client).__name__ == "OpenAI"
    assert deltastream.accelerate(client) is client  # twice is once
    stream: Any = client.with_options(timeout=30.0).chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    assert isinstance(stream, deltastream.Stream)
    assert stream.get_final_completion().choices[0].message.content.startswith("Once")
    client.close()
    with pytest.raises(TypeError):
        deltastream.accelerate(object())  # type: ignore[type-var]


class _Subclass(openai.AsyncOpenAI):
    """A framework's own subclass of the client."""

    def marker(self) -> str:
        return "still mine"


async def test_accelerate_takes_subclasses(server_url: str) -> None:
    client = deltastream.accelerate(_Subclass(base_url=server_url, api_key="sk-test"))
    assert isinstance(client, _Subclass)
    assert client.marker() == "still mine"
    stream: Any = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    assert isinstance(stream, deltastream.AsyncStream)
    assert (await stream.get_final_completion()).choices[0].finish_reason == "stop"
    await client.close()
