"""Instrumentation that wraps openai's resource methods (OpenTelemetry's official
openai-v2 instrumentation) sees the drop-in's streamed calls exactly as it sees
openai-python's: the same spans with the same attributes, sync and async."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import deltastream

MESSAGES: Any = [{"role": "user", "content": "Write a story about a robot."}]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()


def summary(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind,
        "status": span.status.status_code,
        "attributes": dict(span.attributes or {}),
        "ended": span.end_time is not None,
    }


def stream_once(client: openai.OpenAI) -> str:
    with client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_streamed_calls_make_the_same_spans(
    exporter: InMemorySpanExporter, server_url: str
) -> None:
    theirs = stream_once(openai.OpenAI(base_url=server_url, api_key="sk-test"))
    ours = stream_once(deltastream.OpenAI(base_url=server_url, api_key="sk-test"))
    assert ours == theirs
    first, second = exporter.get_finished_spans()
    assert summary(second) == summary(first)
    attributes = summary(second)["attributes"]
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gen_ai.response.id"].startswith("chatcmpl-")


async def test_async_streamed_calls_make_the_same_spans(
    exporter: InMemorySpanExporter, server_url: str
) -> None:
    texts = []
    for cls in (openai.AsyncOpenAI, deltastream.AsyncOpenAI):
        async with cls(base_url=server_url, api_key="sk-test") as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            texts.append("".join([c.choices[0].delta.content or "" async for c in stream]))
    assert texts[0] == texts[1]
    first, second = exporter.get_finished_spans()
    assert summary(second) == summary(first)


def test_an_error_mid_stream_is_recorded_the_same(
    exporter: InMemorySpanExporter, server_url: str
) -> None:
    """A server error inside the stream ends both spans in error. The error's type is
    the one difference: deltastream raises a subclass of openai's APIError."""
    headers = {"X-Deltastream-Fault": "error-after=3"}
    raised = []
    for cls in (openai.OpenAI, deltastream.OpenAI):
        client = cls(base_url=server_url, api_key="sk-test")
        with client, pytest.raises(openai.APIError) as caught:
            for _ in client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=headers
            ):
                pass
        raised.append(type(caught.value))
    assert raised == [openai.APIError, deltastream.APIStreamError]
    first, second = (summary(span) for span in exporter.get_finished_spans())
    assert first["attributes"].pop("error.type") == str(openai.APIError)
    assert second["attributes"].pop("error.type") == str(deltastream.APIStreamError)
    assert second == first
