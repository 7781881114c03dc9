"""What the drop-in relies on inside openai-python, each checked by name and shape, so
that an openai release that moves one fails here, saying which, before anything else
fails less clearly. (`make test` runs this on the oldest supported openai and the
lock's; `make test-latest` on the newest release.)"""

from __future__ import annotations

import inspect
from typing import Any

import openai
import pytest
from openai import _base_client, _models, _streaming
from openai._utils import LazyProxy
from openai.lib.streaming.chat import (
    AsyncChatCompletionStream,
    ChatCompletionStream,
    ChatCompletionStreamState,
)


@pytest.mark.parametrize("cls", [openai.OpenAI, openai.AsyncOpenAI])
def test_the_client_hooks_the_engine_overrides(cls: Any) -> None:
    # where openai picks the stream class (called with keyword arguments only)
    process = inspect.signature(cls._process_response).parameters
    assert {"cast_to", "options", "response", "stream", "stream_cls"} <= set(process)
    assert all(p.kind is p.KEYWORD_ONLY for name, p in process.items() if name != "self")
    # called with each request just before it is sent
    assert list(inspect.signature(cls._prepare_request).parameters) == ["self", "request"]
    # called with each attempt's options before the request is built (the async
    # clients' start pacing waits there), returning the options to use
    assert list(inspect.signature(cls._prepare_options).parameters) == ["self", "options"]
    assert inspect.iscoroutinefunction(cls._prepare_options) is (cls is openai.AsyncOpenAI)
    # builds an event leniently, as openai's own streams do
    assert {"data", "cast_to", "response"} <= set(
        inspect.signature(cls._process_response_data).parameters
    )
    # a keyless client for a server that needs no key
    assert "_enforce_credentials" in inspect.signature(cls.__init__).parameters
    assert list(inspect.signature(cls._validate_headers).parameters) == [
        "self",
        "headers",
        "custom_headers",
    ]


@pytest.mark.parametrize("cls", [openai.Stream, openai.AsyncStream])
def test_the_stream_classes_are_built_as_the_engine_builds_them(cls: Any) -> None:
    parameters = inspect.signature(cls.__init__).parameters
    assert list(parameters) == ["self", "cast_to", "response", "client", "options"]


def test_openai_reads_a_stream_classs_item_type_from_its_direct_bases() -> None:
    class Chunks(openai.Stream[openai.types.chat.ChatCompletionChunk]):
        pass

    assert _streaming.extract_stream_chunk_type(Chunks) is openai.types.chat.ChatCompletionChunk


@pytest.mark.parametrize("cls", [ChatCompletionStream, AsyncChatCompletionStream])
def test_the_chat_helper_streams_keep_what_the_drop_in_extends(cls: Any) -> None:
    # the engine's stream, read for the extras; the state, given a null delta's
    # stand-in through handle_chunk (dropin/_helpers.py)
    raw: Any = type("Raw", (), {"response": None})()
    stream = cls(raw_stream=raw, response_format=openai.omit, input_tools=openai.omit)
    assert stream._raw_stream is raw
    assert type(stream._state) is ChatCompletionStreamState
    assert list(inspect.signature(ChatCompletionStreamState.handle_chunk).parameters) == [
        "self",
        "chunk",
    ]


def test_the_request_options_the_engine_reads() -> None:
    fields = set(_models.FinalRequestOptions.model_fields)
    assert {"method", "url", "params", "headers", "max_retries", "timeout", "json_data"} <= fields
    assert callable(_models.FinalRequestOptions.get_max_retries)
    assert callable(_models.construct_type)


def test_the_default_http_clients_and_the_module_client() -> None:
    assert issubclass(_base_client.SyncHttpxClientWrapper, openai.DefaultHttpxClient)
    assert issubclass(_base_client.AsyncHttpxClientWrapper, openai.DefaultAsyncHttpxClient)
    assert callable(openai._load_client)
    assert isinstance(openai.chat, LazyProxy)
    # how deltastream tells the module client's resources from v0's removed names
    assert type(openai.chat).__module__ == "openai._module_client"
    assert type(vars(openai)["ChatCompletion"]).__module__ != "openai._module_client"
    assert openai._constants.RAW_RESPONSE_HEADER == "X-Stainless-Raw-Response"
