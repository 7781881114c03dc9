from deltastream import OpenAI

client = OpenAI()

stream = client.chat.completions.create(
    model="gpt-4",
    messages=[{"role": "user", "content": "Count to 5"}],
    stream=True,
)

for chunk in stream:
    print(f"Chunk ID: {chunk.id}")
    print(f"Model: {chunk.model}")
    print(f"Created: {chunk.created}")

    # Delta contains incremental content
    delta = chunk.choices[0].delta
    if delta.content is not None:
        print(f"Content: {delta.content}")

    # Check for function calls
    if delta.function_call:
        print(f"Function: {delta.function_call}")

    # Check finish reason
    if chunk.choices[0].finish_reason:
        print(f"Finish: {chunk.choices[0].finish_reason}")
