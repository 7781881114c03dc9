"""A background Responses stream survives a dropped connection: the client asks for the
rest (GET /responses/{id}?stream=true&starting_after=N) and hands over every event once,
in order.

Against `deltastream serve`, the X-Deltastream-Fault header makes the server cut each
connection after 10 events, so this stream is resumed several times (see docs/faults.md).
"""

from deltastream import OpenAI

client = OpenAI(max_retries=5)  # each resume counts as one retry

stream = client.responses.create(
    model="gpt-4o-mini",
    input="Write a haiku about coding",
    max_output_tokens=40,
    background=True,
    stream=True,
    extra_headers={"X-Deltastream-Fault": "drop-after=10"},
)

numbers = []
for event in stream:
    numbers.append(event.sequence_number)
    if event.type == "response.output_text.delta":
        print(event.delta, end="", flush=True)

print()
print(f"{len(numbers)} events, each once and in order: {numbers == list(range(len(numbers)))}")
print(f"resumed {stream.metrics.resumes} times after a dropped connection")
