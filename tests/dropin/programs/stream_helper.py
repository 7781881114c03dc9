"""chat.completions.stream(): the helper's events and its final completion."""

from openai import OpenAI

client = OpenAI()
with client.chat.completions.stream(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Count to 5"}],
    logprobs=True,
) as stream:
    for event in stream:
        if event.type == "content.delta":
            print("delta", repr(event.delta), "snapshot", len(event.snapshot))
        elif event.type == "content.done":
            print("done", event.content)
        else:
            print(event.type)
    completion = stream.get_final_completion()
print(type(completion).__name__, completion.choices[0].finish_reason)
print(completion.choices[0].message.content)
print(completion.choices[0].message.parsed)
