"""Tool calls streamed: merged by hand from deltas, and by the stream helper, with
arguments parsed by a pydantic model (pydantic_function_tool)."""

import json

import pydantic
from openai import OpenAI, pydantic_function_tool


class GetWeather(pydantic.BaseModel):
    location: str
    unit: str = "celsius"


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
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "What's the weather in Tokyo?"}],
    tools=tools,  # type: ignore[arg-type]
    stream=True,
)
calls: dict[int, dict[str, str]] = {}
for chunk in stream:
    for call in chunk.choices[0].delta.tool_calls or []:
        entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
        if call.function and call.function.name:
            entry["name"] += call.function.name
        if call.function and call.function.arguments:
            entry["arguments"] += call.function.arguments
for index, call in sorted(calls.items()):
    print(index, call["name"], json.loads(call["arguments"]))

with client.chat.completions.stream(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "What's the weather in Tokyo?"}],
    tools=[pydantic_function_tool(GetWeather)],
) as helper:
    for event in helper:
        if event.type == "tool_calls.function.arguments.done":
            print(event.name, event.arguments, event.parsed_arguments)
        elif event.type == "tool_calls.function.arguments.delta":
            print("args delta", repr(event.arguments_delta))
message = helper.get_final_completion().choices[0].message
for tool_call in message.tool_calls or []:
    print(tool_call.function.name, tool_call.function.parsed_arguments)  # type: ignore[union-attr]
