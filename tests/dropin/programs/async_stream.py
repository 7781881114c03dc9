"""The async client: a stream iterated with async for, closed by async with."""

import asyncio

import openai
from openai import AsyncOpenAI


async def main() -> None:
    async with AsyncOpenAI() as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hello!"}],
            stream=True,
        )
        print(isinstance(stream, openai.AsyncStream))
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    print(chunk.choices[0].delta.content, end="")
        print()
        async with client.chat.completions.stream(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}]
        ) as helper:
            async for event in helper:
                print(event.type, getattr(event, "delta", ""))
            final = await helper.get_final_completion()
        print(final.choices[0].message.content)


asyncio.run(main())
