"""Client options as openai reads them: organization, project, default_query,
with_options(), copy(), a callable api_key, NOT_GIVEN / omit, tools=None."""

import openai
from openai import NOT_GIVEN, OpenAI, omit

client = OpenAI(
    api_key=lambda: "sk-from-a-callable",
    organization="org-1",
    project="proj-1",
    default_headers={"X-Extra": "yes"},
    default_query={"tenant": "t1"},
)
raw = client.chat.completions.with_raw_response.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hello!"}],
    tools=None,  # type: ignore[arg-type]
    temperature=NOT_GIVEN,
    top_p=omit,
)
request = raw.http_request
print(request.url.params.get("tenant"))
for name in ("authorization", "openai-organization", "openai-project", "x-extra"):
    print(name, request.headers.get(name))
print(raw.parse().choices[0].message.content)

other = client.with_options(api_key="sk-other", timeout=20.0, max_retries=5)
print(other.api_key, other.max_retries, other.organization, type(other) is type(client))
copied = client.copy(organization="org-2")
print(copied.organization, copied.project)
print(isinstance(client, openai.OpenAI))
stream = other.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello!"}], stream=True
)
print(stream.response.request.headers.get("authorization"))
print("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
