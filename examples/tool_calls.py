"""The tool-calling pattern real servers use: `tools=` is answered with `delta.tool_calls`.

The guide's own function-calling example reads the legacy `delta.function_call`, which
servers only send in answer to the legacy `functions=` parameter. deltastream merges the
tool-call deltas for you: `get_final_completion()` returns each call with its full
argument string.
"""

import json

from deltastream import OpenAI

client = OpenAI()

tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    }
]

with client.chat.completions.create(
    model="gpt-4",
    messages=[{"role": "user", "content": "What's the weather in Tokyo?"}],
    tools=tools,
    stream=True,
) as stream:
    # Watch the arguments arrive, delta by delta ...
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function and call.function.name:
                print(f"calling {call.function.name}: ", end="")
            if call.function and call.function.arguments:
                print(call.function.arguments, end="", flush=True)
    print()
    # ... then read them whole.
    message = stream.get_final_completion().choices[0].message

for call in message.tool_calls or []:
    print(f"Function: {call.function.name}")
    print(f"Arguments: {json.loads(call.function.arguments)}")
