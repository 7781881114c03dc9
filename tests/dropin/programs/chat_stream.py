"""A plain chat stream: text, finish reason, usage, the chunk's own dump."""

import openai
from openai import OpenAI

client = OpenAI()
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Write a story about a robot."}],
    stream=True,
    stream_options={"include_usage": True},
)
print(isinstance(stream, openai.Stream))
text = []
for chunk in stream:
    assert isinstance(chunk, openai.types.chat.ChatCompletionChunk)
    if chunk.usage is not None:
        print("usage", chunk.usage.model_dump())
    for choice in chunk.choices:
        if choice.delta.content:
            text.append(choice.delta.content)
        if choice.finish_reason:
            print("finish", choice.finish_reason)
print("".join(text))
print(sorted(chunk.model_dump(exclude_none=True)))
print(chunk.model_dump(include={"object", "model"}))
