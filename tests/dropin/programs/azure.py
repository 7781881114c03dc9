"""AzureOpenAI: its own URL scheme, api-version and key header. (The local server has
no Azure routes: the calls end in openai's NotFoundError, raised the same way.)"""

import os

import openai
from openai import AzureOpenAI

root = os.environ["OPENAI_BASE_URL"].removesuffix("/v1")
client = AzureOpenAI(api_key="azure-key", api_version="2024-10-21", base_url=f"{root}/v1")
for stream in (False, True):
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=stream
        )
    except openai.NotFoundError as e:
        request = e.request
        print(type(e).__name__, e.status_code, request.url.path)
        print(request.url.params.get("api-version"), request.headers.get("api-key"))
