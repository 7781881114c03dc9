"""openai's module-level client through ``import deltastream as openai``: settings go
to openai's module, and the client it builds streams on deltastream's engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

import deltastream


@pytest.fixture
def module_client(server_url: str) -> Iterator[None]:
    saved = (openai.api_key, openai.base_url)
    openai._reset_client()
    deltastream.api_key = "sk-module"
    deltastream.base_url = server_url + "/"  # as openai's module-level setting wants it
    try:
        yield
    finally:
        if openai._client is not None:  # _reset_client() only drops it, connections and all
            openai._client.close()
        openai._reset_client()
        openai.api_key, openai.base_url = saved


def test_the_module_level_client_streams_on_the_engine(module_client: None) -> None:
    assert openai.api_key == "sk-module"
    stream: Any = deltastream.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Hello!"}], stream=True
    )
    assert isinstance(stream, deltastream.Stream)
    assert isinstance(stream, openai.Stream)
    text = "".join(stream.text_deltas())
    assert text == stream.current_snapshot.choices[0].message.content
    assert [m.id for m in deltastream.models.list()]  # everything else is openai's own
    assert getattr(type(openai._client), "_deltastream_engine", False)


def test_the_names_removed_in_v1_raise_openais_error() -> None:
    """``openai.ChatCompletion.create(...)`` (v0) raises openai's error saying it was
    removed, with ``import deltastream as openai`` too."""
    assert deltastream.ChatCompletion is vars(openai)["ChatCompletion"]
    with pytest.raises(openai.OpenAIError, match="no longer supported") as caught:
        deltastream.ChatCompletion.create(model="m", messages=[])
    assert type(caught.value).__name__ == "APIRemovedInV1"
