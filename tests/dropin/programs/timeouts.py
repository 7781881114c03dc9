"""Timeouts as openai reads them: None turns every deadline off (per request, over a
client's short one, and for a whole client), httpx's Timeout forms, and a given HTTP
client's own timeout. The server stalls 0.8 s after two events."""

import httpx2
import openai
from openai import OpenAI, Timeout

MESSAGES = [{"role": "user", "content": "Hello!"}]
STALL = {"X-Deltastream-Fault": "stall-after=2:0.8"}


def outcome(client: OpenAI, **options: object) -> str:
    try:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            extra_headers=STALL,
            **options,  # type: ignore[arg-type]
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    except (openai.APITimeoutError, httpx2.TimeoutException):
        # (openai raises httpx's ReadTimeout mid-stream, deltastream APITimeoutError)
        return "timed out"


short = OpenAI(timeout=0.25, max_retries=0)
print("short:", outcome(short))
print("per request None:", outcome(short, timeout=None))
print("client None:", outcome(OpenAI(timeout=None, max_retries=0)))
print("Timeout(5.0):", outcome(short, timeout=Timeout(5.0)))
print("Timeout(None):", outcome(short, timeout=Timeout(None)))
print("Timeout(0.25, connect=5.0):", outcome(short, timeout=Timeout(0.25, connect=5.0)))
four = Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)
print("four phases:", outcome(short, timeout=four))
print("with_options(None):", outcome(short.with_options(timeout=None)))
given = openai.DefaultHttpxClient(timeout=0.25)
print("the HTTP client's:", outcome(OpenAI(http_client=given, max_retries=0)))
print(OpenAI(http_client=openai.DefaultHttpxClient(timeout=7.0)).timeout)
