"""Responses streams (from the replay server): typed events and the stream helper."""

import os

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["REPLAY_URL"])
stream = client.responses.create(model="openai/responses-text.sse", input="hi", stream=True)
for event in stream:
    assert isinstance(event, openai.types.responses.ResponseStreamEvent.__args__[0].__args__)  # type: ignore[attr-defined]
    print(event.sequence_number, event.type, getattr(event, "delta", ""))

with client.responses.stream(model="openai/responses-function-call.sse", input="hi") as helper:
    for event in helper:
        print(event.type)
    final = helper.get_final_response()
print(final.status, final.output_text, [item.type for item in final.output])
print(final.usage.model_dump() if final.usage else None)
