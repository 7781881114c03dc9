"""What code that inspects chunks does with them: model_dump variants, JSON, types."""

import json

import openai
from openai import OpenAI
from openai.types.chat import ChatCompletionChunk

client = OpenAI()
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hello!"}],
    stream=True,
)
chunks = list(stream)
first = chunks[0]
print(isinstance(first, ChatCompletionChunk), type(first).__module__)
print(first.choices[0].model_dump())
print(first.choices[0].delta.model_dump(exclude_none=True))
print(sorted(first.model_dump(exclude_none=True)))
print(sorted(json.loads(first.model_dump_json())))
print(sorted(first.to_dict()))
print(first.choices[0].delta.to_json(indent=None))
print(chunks[-1].choices[0].finish_reason if chunks[-1].choices else chunks[-1].usage)
copy = ChatCompletionChunk.model_validate(first.model_dump())
print(copy == first, copy.choices[0].delta.role)
print(isinstance(stream, openai.Stream), stream.response.status_code)
