"""The official openai package, pointed at our server, streams from it without error."""

from __future__ import annotations

import openai
import pytest

RESPONSES = ["openai/responses-text.sse", "openai/responses-function-call.sse"]


@pytest.mark.parametrize("recording", RESPONSES)
def test_openai_package_streams_responses_from_the_replay_server(
    replay_url: str, recording: str
) -> None:
    client = openai.OpenAI(base_url=replay_url, api_key="x", max_retries=0)
    with client.responses.stream(model=recording, input="hi") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    client.close()
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert final.status == "completed"


def test_openai_package_streams_a_real_model(llama_url: str) -> None:
    client = openai.OpenAI(base_url=llama_url, api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Write a story about a robot."}],
        max_tokens=12,
        seed=1,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    client.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens > 0


@pytest.mark.parametrize("backend", ["scripted", "replay"])
def test_openai_package_retrieves_each_listed_model_and_not_others(
    backend: str, server_url: str, replay_url: str
) -> None:
    url = server_url if backend == "scripted" else replay_url
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
    with client:
        names = [model.id for model in client.models.list()]
        assert names
        for name in names[:5]:  # a replay model's name is a path, slashes and all
            model = client.models.retrieve(name)
            assert (model.id, model.object) == (name, "model")
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("no-such-model")
    assert caught.value.code == "model_not_found"
