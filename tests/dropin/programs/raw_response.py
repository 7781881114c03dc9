"""Headers of a call (with_raw_response), a streamed raw response, models.list()."""

from openai import OpenAI

client = OpenAI()
raw = client.chat.completions.with_raw_response.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}]
)
print(raw.status_code, raw.headers.get("content-type"))
completion = raw.parse()
print(completion.choices[0].message.content)

raw_stream = client.chat.completions.with_raw_response.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=True
)
print(raw_stream.headers.get("content-type"))
print("".join(c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices))

with client.chat.completions.with_streaming_response.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=True
) as response:
    lines = [line for line in response.iter_lines() if line.startswith("data: ")]
print(len(lines) > 2, lines[-1])

print([model.id for model in client.models.list()])
print(client.models.with_raw_response.list().status_code)
