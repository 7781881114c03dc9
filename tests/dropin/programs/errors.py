"""Errors: openai's classes, caught by `except openai.*`, with openai's attributes."""

import uuid

import openai
from openai import OpenAI

client = OpenAI(max_retries=0)
FAULT = "X-Deltastream-Fault"
KEY = uuid.uuid4().hex  # the local server counts a fault's attempts per key

try:
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello!"}],
        stream=True,
        extra_headers={FAULT: f"status=429; times=99; key={KEY}-a"},
    )
except openai.RateLimitError as e:
    print(type(e).__name__, e.status_code, e.message)
    print(e.body if not isinstance(e.body, dict) else sorted(e.body))
    print(isinstance(e.body, dict) and e.body.get("message"))

try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[], stream=True)
except openai.BadRequestError as e:
    print(type(e).__name__, e.status_code, e.code, e.param, e.type)
    print(isinstance(e.body, dict) and e.body.get("message"))
except openai.APIStatusError as e:
    print("status", e.status_code)

try:
    client.with_options(max_retries=1).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello!"}],
        stream=True,
        extra_headers={FAULT: f"status=503; times=99; retry-after-ms=1; key={KEY}-b"},
    )
except openai.InternalServerError as e:
    print(type(e).__name__, e.status_code)

try:
    client.models.retrieve("no-such-model")
except openai.NotFoundError as e:
    print(type(e).__name__, e.status_code)
except openai.APIError as e:
    print("api error", type(e).__name__)

bad = OpenAI(base_url="http://127.0.0.1:9/v1", max_retries=0)
try:
    bad.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=True
    )
except openai.APIConnectionError as e:
    print(type(e).__name__, e.message)
