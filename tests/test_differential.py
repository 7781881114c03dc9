"""Differential testing against openai-python: the same bytes, two implementations.

Hypothesis generates valid chat completion streams (multi-byte text, ``n > 1``,
parallel tool calls with arguments split anywhere, refusals, logprobs, a usage chunk)
and frames them as SSE in random ways (LF, CR, CRLF or a mix of them, comments,
multi-line data, ``id``/``retry`` lines, split into random network pieces, cuts inside
UTF-8 characters and between CR and LF included). Every stream goes through

- deltastream: ``ChunkStream.feed`` piece by piece, then ``accumulator.snapshot()``;
- openai-python: its own ``SSEDecoder.iter_bytes`` over the same pieces, each event
  turned into a ``ChatCompletionChunk`` the way its ``Stream`` does it
  (``construct_type``), folded by ``ChatCompletionStreamState``;

and the results must agree per choice (role, content, refusal, tool calls, finish
reason, logprobs token counts) and on usage.

The generator stays inside what the official SDK handles. What it does not handle
(and deltastream does) is pinned down by the ``test_sdk_fails_*`` tests at the end,
each of which asserts both that deltastream gets it right and that the SDK does not,
so that a fix in either shows up here.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import LengthFinishReasonError
from openai._models import construct_type
from openai._streaming import SSEDecoder as OpenAISSEDecoder
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion as OpenAICompletion
from openai.types.chat import ChatCompletionChunk as OpenAIChunk

import deltastream
import deltastream.native
from deltastream.dropin._faces import ChatFace
from deltastream.engine._protocol import ChunkStream
from deltastream.engine.types import ChatCompletion

# -- generating streams ---------------------------------------------------------------

# Plain ASCII, two-, three- and four-byte UTF-8, combining marks, JSON's special
# characters and line breaks inside strings (escaped by JSON, so never a frame break).
TEXT_ALPHABET = st.one_of(
    st.sampled_from(list('ab cd.,!?"\\/{}[]:\n\t\r\u2028')),
    st.sampled_from(list("éüßñ你好世界ありがとう😀🤖👍🏽\u0301\u200d")),
    st.characters(codec="utf-8", exclude_categories=["Cs"]),
)
TEXT = st.text(TEXT_ALPHABET, max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def split_text(draw: st.DrawFn, text: str, max_pieces: int = 6) -> list[str]:
    """``text`` cut at random character positions (empty pieces allowed)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=max_pieces)))
    pieces, start = [], 0
    for cut in [*cuts, len(text)]:
        pieces.append(text[start:cut])
        start = cut
    return pieces


def token_logprobs(draw: st.DrawFn, count: int) -> list[dict[str, Any]]:
    tokens = []
    for _ in range(count):
        token = draw(TEXT)
        tokens.append(
            {
                "token": token,
                "logprob": -draw(st.floats(0, 20, allow_nan=False)),
                "bytes": list(token.encode()),
                "top_logprobs": [],
            }
        )
    return tokens


@dataclass
class ChoicePlan:
    index: int
    deltas: list[dict[str, Any]] = field(default_factory=list)  # each: choice JSON minus index


@st.composite
def choice_plans(draw: st.DrawFn, index: int, with_logprobs: bool) -> ChoicePlan:
    plan = ChoicePlan(index)
    kind = draw(st.sampled_from(["content", "refusal", "tools", "content+tools"]))

    def logprobs(part: str) -> dict[str, Any] | None:
        if not with_logprobs:
            return None
        tokens = token_logprobs(draw, draw(st.integers(0, 3)))
        other = "refusal" if part == "content" else "content"
        return {part: tokens, other: None}

    first: dict[str, Any] = {"role": "assistant", "content": draw(st.sampled_from(["", None]))}
    if draw(st.booleans()):
        first["refusal"] = None
    plan.deltas.append({"delta": first, "logprobs": None, "finish_reason": None})

    if kind in ("content", "content+tools"):
        for piece in split_text(draw, draw(TEXT)):
            delta = {"delta": {"content": piece}, "finish_reason": None}
            delta["logprobs"] = logprobs("content")
            plan.deltas.append(delta)
    if kind == "refusal":
        for piece in split_text(draw, draw(TEXT)):
            delta = {"delta": {"refusal": piece}, "finish_reason": None}
            delta["logprobs"] = logprobs("refusal")
            plan.deltas.append(delta)
    if kind in ("tools", "content+tools"):
        # Parallel calls: each starts (id, type, name) in index order; their argument
        # fragments then interleave, several fragments may share one delta.
        calls = draw(st.integers(1, 3))
        fragments: list[list[dict[str, Any]]] = []
        for i in range(calls):
            arguments = json.dumps(
                draw(st.dictionaries(TEXT, JSON_VALUES, max_size=3)),
                ensure_ascii=draw(st.booleans()),
            )
            pieces = split_text(draw, arguments)
            start = {
                "index": i,
                "id": f"call_{index}_{i}_{draw(st.text('abcXYZ019', min_size=1, max_size=8))}",
                "type": "function",
                "function": {
                    "name": f"tool_{draw(st.sampled_from(['a', 'é', '天気']))}",
                    "arguments": pieces[0],
                },
            }
            rest = [{"index": i, "function": {"arguments": p}} for p in pieces[1:]]
            fragments.append([start, *rest])
        queue = [f[0] for f in fragments]
        tails = [f[1:] for f in fragments]
        for tail in tails:
            queue.extend(tail)
        # Keep each call's fragments in order but interleave calls after their starts.
        order = draw(st.permutations(range(len(queue) - calls)))
        shuffled = _stable_interleave(queue[calls:], order)
        everything = queue[:calls] + shuffled
        while everything:
            take = draw(st.integers(1, min(3, len(everything))))
            group, everything = everything[:take], everything[take:]
            plan.deltas.append(
                {"delta": {"tool_calls": group}, "logprobs": None, "finish_reason": None}
            )
    finish = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
    plan.deltas.append({"delta": {}, "logprobs": None, "finish_reason": finish})
    return plan


def _stable_interleave(items: list[dict[str, Any]], order: list[int]) -> list[dict[str, Any]]:
    """Reorder ``items`` by ``order`` but keep fragments of the same call in order."""
    by_call: dict[int, list[dict[str, Any]]] = {}
    for item in items:
        by_call.setdefault(item["index"], []).append(item)
    result = []
    for position in order:
        call = items[position]["index"]
        result.append(by_call[call].pop(0))
    return result


@dataclass
class StreamPlan:
    chunks: list[dict[str, Any]]
    body: bytes
    pieces: list[bytes]

    def __repr__(self) -> str:
        return f"StreamPlan(body={self.body!r}, cuts={[len(p) for p in self.pieces]})"


@st.composite
def chat_chunks(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 3))
    with_logprobs = draw(st.booleans())
    plans = [draw(choice_plans(i, with_logprobs)) for i in range(n)]
    include_usage = draw(st.booleans())
    base: dict[str, Any] = {
        "id": "chatcmpl-" + draw(st.text("abcdef0123", min_size=1, max_size=10)),
        "object": "chat.completion.chunk",
        "created": draw(st.integers(0, 2**31)),
        "model": draw(st.sampled_from(["gpt-4o-mini", "gpt-4.1", "模型"])),
        "system_fingerprint": "fp_1",
    }
    if include_usage:
        base["usage"] = None
    # Interleave the choices: every chunk takes the next delta of one or more choices.
    # Choices first appear in index order, all in the first chunk (as OpenAI does).
    chunks: list[dict[str, Any]] = []
    first = [{"index": p.index, **p.deltas[0]} for p in plans]
    cursors = [1] * n
    chunks.append({**base, "choices": first})
    while any(c < len(p.deltas) for c, p in zip(cursors, plans, strict=True)):
        open_ = [i for i in range(n) if cursors[i] < len(plans[i].deltas)]
        chosen = draw(
            st.lists(st.sampled_from(open_), min_size=1, max_size=len(open_), unique=True)
        )
        choices = []
        for i in sorted(chosen):
            choices.append({"index": i, **plans[i].deltas[cursors[i]]})
            cursors[i] += 1
        chunks.append({**base, "choices": choices})
    if include_usage:
        prompt, completion = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if draw(st.booleans()):
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": draw(st.integers(0, 99))}
        chunks.append({**base, "choices": [], "usage": usage})
    return chunks


LINE_ENDS = ["\n", "\r\n", "\r"]


@st.composite
def framed(draw: st.DrawFn, chunks: list[dict[str, Any]]) -> bytes:
    """The chunks as an SSE body, ``data: [DONE]`` last, framed at random."""
    mode = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    last = [""]

    def end() -> str:
        if mode != "mixed":
            return mode
        # "\r" then "\n" would be one line end (CRLF), not two.
        options = ["\r\n", "\r"] if last[0] == "\r" else LINE_ENDS
        last[0] = draw(st.sampled_from(options))
        return last[0]

    out: list[str] = []
    if draw(st.booleans()):
        out.append(": connected" + end())
    payloads = [
        json.dumps(
            chunk,
            ensure_ascii=draw(st.booleans()),
            indent=draw(st.sampled_from([None, None, 1])),
            separators=draw(st.sampled_from([None, (",", ":")])),
        )
        for chunk in chunks
    ]
    for payload in [*payloads, "[DONE]"]:
        if draw(st.integers(0, 4)) == 0:
            out.append(": keep-alive" + end() + end())  # a comment-only block
        for line in payload.split("\n"):  # indent=1 gives multi-line data
            if draw(st.integers(0, 6)) == 0:
                out.append(":" + draw(st.sampled_from(["", " ping", "data: {"])) + end())
            if draw(st.integers(0, 8)) == 0:
                # No ``id`` lines: see test_sdk_fails_id_then_blank_lines.
                out.append(draw(st.sampled_from(["retry: 1000", "event: message"])) + end())
            sep = draw(st.sampled_from(["data: ", "data:"]))
            if line.startswith(" ") and sep == "data:":
                sep = "data: "  # "data:  x" would keep the leading space: fine, but be plain
            out.append(sep + line + end())
        out.append(end())
    return "".join(out).encode("utf-8")


@st.composite
def streams(draw: st.DrawFn) -> StreamPlan:
    chunks = draw(chat_chunks())
    body = draw(framed(chunks))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=30))))
    if draw(st.integers(0, 9)) == 0:
        cuts = list(range(1, len(body)))  # byte by byte
    pieces, start = [], 0
    for cut in [*cuts, len(body)]:
        if cut > start:
            pieces.append(body[start:cut])
            start = cut
    return StreamPlan(chunks, body, pieces)


# -- the two implementations ----------------------------------------------------------


def deltastream_result(pieces: list[bytes]) -> tuple[list[bytes], ChatCompletion]:
    request = httpx2.Request("POST", "http://differential/v1/chat/completions")
    core = ChunkStream(httpx2.Response(200, request=request))
    raws: list[bytes] = []
    for piece in pieces:
        raws.extend(_raw(chunk) for chunk in core.feed(piece))
    core.end()
    return raws, core.accumulator.snapshot()


def _raw(chunk: Any) -> bytes:
    raw: bytes = chunk._raw  # the event's bytes as received (what to_dict() parses)
    return raw


def openai_events(pieces: list[bytes]) -> Iterator[str]:
    """Event data as openai-python's ``Stream`` sees it, up to ``[DONE]``."""
    for sse in OpenAISSEDecoder().iter_bytes(iter(pieces)):
        if sse.data.startswith("[DONE]"):
            return
        yield sse.data


def openai_state(datas: list[str]) -> ChatCompletionStreamState[Any]:
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for data in datas:
        chunk = construct_type(type_=OpenAIChunk, value=json.loads(data))
        assert isinstance(chunk, OpenAIChunk)
        state.handle_chunk(chunk)
    return state


# -- comparing ------------------------------------------------------------------------


def summary_of_ours(final_: ChatCompletion | OpenAICompletion) -> dict[str, Any]:
    final: Any = final_  # either face's completion: the same attribute names
    choices = {}
    for choice in final.choices:
        message = choice.message
        logprobs = choice.logprobs
        choices[choice.index] = {
            "role": message.role,
            "content": message.content,
            "refusal": message.refusal,
            "tool_calls": [
                (c.id, c.type, c.function.name, c.function.arguments)
                for c in message.tool_calls or []
            ],
            "finish_reason": choice.finish_reason,
            # Token counts; no logprobs counts as none.
            "logprobs": (0, 0)
            if logprobs is None
            else (len(logprobs.content or []), len(logprobs.refusal or [])),
        }
    usage = None
    if final.usage is not None:
        usage = {
            "prompt_tokens": final.usage.prompt_tokens,
            "completion_tokens": final.usage.completion_tokens,
            "total_tokens": final.usage.total_tokens,
            "cached_tokens": final.usage.prompt_tokens_details.cached_tokens
            if final.usage.prompt_tokens_details
            else None,
            "reasoning_tokens": final.usage.completion_tokens_details.reasoning_tokens
            if final.usage.completion_tokens_details
            else None,
        }
    return {"choices": choices, "usage": usage}


def summary_of_theirs(state: ChatCompletionStreamState[Any]) -> dict[str, Any]:
    snapshot = state.current_completion_snapshot
    choices = {}
    for choice in snapshot.choices:
        message = choice.message
        logprobs = choice.logprobs
        choices[choice.index] = {
            "role": message.role,
            "content": message.content,
            "refusal": message.refusal,
            "tool_calls": [
                (c.id, c.type, c.function.name, c.function.arguments)
                for c in message.tool_calls or []
            ],
            "finish_reason": choice.finish_reason,
            # Token counts; no logprobs counts as none.
            "logprobs": (0, 0)
            if logprobs is None
            else (len(logprobs.content or []), len(logprobs.refusal or [])),
        }
    usage = None
    if snapshot.usage is not None:
        u = snapshot.usage
        usage = {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "cached_tokens": u.prompt_tokens_details.cached_tokens
            if u.prompt_tokens_details
            else None,
            "reasoning_tokens": u.completion_tokens_details.reasoning_tokens
            if u.completion_tokens_details
            else None,
        }
    return {"choices": choices, "usage": usage}


@settings(
    # "Thousands" in total across runs; raise it for a long run: make soak sets 5000.
    max_examples=int(os.environ.get("DELTASTREAM_DIFFERENTIAL_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams())
def test_deltastream_accumulates_like_openai_python(stream: StreamPlan) -> None:
    raws, ours = deltastream_result(stream.pieces)
    # Both SSE decoders recover exactly the JSON that was sent, event for event.
    assert [json.loads(r) for r in raws] == stream.chunks
    datas = list(openai_events(stream.pieces))
    assert [json.loads(d) for d in datas] == stream.chunks
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theirs = openai_state(datas)
    assert summary_of_ours(ours) == summary_of_theirs(theirs)


def dropin_result(pieces: list[bytes]) -> tuple[list[Any], Any]:
    """The same bytes through the drop-in's face: openai's chunks and snapshot."""
    request = httpx2.Request("POST", "http://differential/v1/chat/completions")
    response = httpx2.Response(200, request=request)
    client = openai.OpenAI(api_key="sk-differential", base_url="http://differential/v1")
    core = ChunkStream(response, face=ChatFace(client, response))
    chunks = [chunk for piece in pieces for chunk in core.feed(piece)]
    core.end()
    return chunks, core.snapshot()


@settings(
    max_examples=int(os.environ.get("DELTASTREAM_DIFFERENTIAL_EXAMPLES", "300")) // 3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams())
def test_the_drop_in_hands_out_and_accumulates_what_openai_python_does(
    stream: StreamPlan,
) -> None:
    chunks, ours = dropin_result(stream.pieces)
    datas = list(openai_events(stream.pieces))
    theirs_chunks: list[Any] = [
        construct_type(type_=OpenAIChunk, value=json.loads(d)) for d in datas
    ]
    assert all(type(chunk) is OpenAIChunk for chunk in chunks)
    assert [c.model_dump() for c in chunks] == [c.model_dump() for c in theirs_chunks]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theirs = openai_state(datas)
    assert isinstance(ours, OpenAICompletion)
    assert summary_of_ours(ours) == summary_of_theirs(theirs)


# -- where the official SDK fails and deltastream does not -----------------------------
#
# Each test feeds one small stream to both; deltastream must give the right answer and
# the SDK is asserted to get it wrong (or raise). If the SDK is fixed, the second
# assertion fails: move the case into the generator above.


def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        **extra,
    }


def body_of(*chunks: dict[str, Any]) -> list[bytes]:
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return [text.encode()]


def both(pieces: list[bytes]) -> tuple[dict[str, Any], dict[str, Any] | BaseException]:
    _, final = deltastream_result(pieces)
    ours = summary_of_ours(final)
    try:
        theirs: dict[str, Any] | BaseException = summary_of_theirs(
            openai_state(list(openai_events(pieces)))
        )
    except Exception as exc:  # the SDK's own failure is the point here
        theirs = exc
    return ours, theirs


def test_sdk_fails_role_repeated_in_every_delta() -> None:
    """Several servers (e.g. some vLLM/Groq versions) repeat ``role`` in every delta:
    the SDK concatenates it like text."""
    pieces = body_of(
        chunk([{"index": 0, "delta": {"role": "assistant", "content": "a"}}]),
        chunk([{"index": 0, "delta": {"role": "assistant", "content": "b"}}]),
    )
    ours, theirs = both(pieces)
    assert ours["choices"][0]["role"] == "assistant"
    assert ours["choices"][0]["content"] == "ab"
    assert isinstance(theirs, dict)
    assert theirs["choices"][0]["role"] == "assistantassistant"


def test_sdk_fails_tool_call_id_and_name_repeated() -> None:
    """A server that repeats ``id`` and ``name`` in each fragment of a call: the SDK
    concatenates them."""
    call = {"index": 0, "id": "call_1", "type": "function"}
    pieces = body_of(
        chunk([{"index": 0, "delta": {"tool_calls": [{**call, "function": {"name": "f"}}]}}]),
        chunk(
            [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{**call, "function": {"name": "f", "arguments": "{}"}}]
                    },
                }
            ]
        ),
    )
    ours, theirs = both(pieces)
    assert ours["choices"][0]["tool_calls"] == [("call_1", "function", "f", "{}")]
    assert isinstance(theirs, dict)
    assert theirs["choices"][0]["tool_calls"] == [("call_1call_1", "function", "ff", "{}")]


def test_sdk_fails_usage_followed_by_a_chunk_without_it() -> None:
    """Usage in a chunk that is not the last one: the SDK keeps only the last chunk's
    ``usage`` field, so a later chunk without usage erases it."""
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    pieces = body_of(
        chunk([{"index": 0, "delta": {"content": "a"}}], usage=usage),
        chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    )
    ours, theirs = both(pieces)
    assert ours["usage"] is not None
    assert ours["usage"]["total_tokens"] == 3
    assert isinstance(theirs, dict)
    assert theirs["usage"] is None


def test_sdk_fails_choices_first_seen_out_of_order() -> None:
    """Choice 1 before choice 0: the SDK indexes its list by position."""
    pieces = body_of(
        chunk([{"index": 1, "delta": {"content": "one"}}]),
        chunk([{"index": 0, "delta": {"content": "zero"}}]),
    )
    ours, theirs = both(pieces)
    assert ours["choices"][0]["content"] == "zero"
    assert ours["choices"][1]["content"] == "one"
    assert isinstance(theirs, BaseException) or theirs["choices"] != ours["choices"]


def test_sdk_fails_tool_call_without_index() -> None:
    """Mistral sends tool calls without ``index``."""
    pieces = body_of(
        chunk(
            [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"id": "a", "function": {"name": "f", "arguments": "{}"}},
                            {"id": "b", "function": {"name": "g", "arguments": "[]"}},
                        ]
                    },
                }
            ]
        ),
    )
    ours, theirs = both(pieces)
    assert ours["choices"][0]["tool_calls"] == [
        ("a", "function", "f", "{}"),
        ("b", "function", "g", "[]"),
    ]
    assert isinstance(theirs, BaseException)


def test_sdk_fails_logprobs_of_a_choice_first_seen_after_the_first_chunk() -> None:
    """A choice that first appears in a later chunk with logprobs: the SDK counts that
    chunk's tokens twice (once from the new choice's dump, once by extending)."""
    token = {"token": "x", "logprob": -0.5, "bytes": [120], "top_logprobs": []}
    pieces = body_of(
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
        chunk(
            [
                {
                    "index": 1,
                    "delta": {"role": "assistant", "content": "x"},
                    "logprobs": {"content": [token], "refusal": None},
                }
            ]
        ),
    )
    ours, theirs = both(pieces)
    assert ours["choices"][1]["logprobs"] == (1, 0)
    assert isinstance(theirs, dict)
    assert theirs["choices"][1]["logprobs"] == (2, 0)


@pytest.mark.parametrize(
    "noise",
    [
        pytest.param("id: 1\n\n", id="id-only-block"),
        pytest.param("retry: 10\n\n", id="retry-only-block"),
        pytest.param("event: ping\n\n", id="event-without-data"),
    ],
)
def test_sdk_fails_blocks_without_data(noise: str) -> None:
    """WHATWG: a block with no data line dispatches nothing. The SDK dispatches an
    event with empty data and then fails to parse it as JSON."""
    text = (
        f"data: {json.dumps(chunk([{'index': 0, 'delta': {'content': 'a'}}]))}\n\n"
        + noise
        + "data: [DONE]\n\n"
    )
    ours, theirs = both([text.encode()])
    assert ours["choices"][0]["content"] == "a"
    assert isinstance(theirs, json.JSONDecodeError)


def test_sdk_fails_byte_order_mark() -> None:
    """A UTF-8 BOM at the start of the body: the SDK reads the first line's field name
    as ``\\ufeffdata`` and loses the first event."""
    pieces = body_of(chunk([{"index": 0, "delta": {"role": "assistant", "content": "a"}}]))
    pieces = [b"\xef\xbb\xbf" + pieces[0]]
    ours, theirs = both(pieces)
    assert ours["choices"][0]["content"] == "a"
    assert isinstance(theirs, BaseException) or theirs["choices"] == {}


def test_sdk_fails_untyped_on_invalid_utf8() -> None:
    """Invalid UTF-8 inside a JSON string: the SDK raises UnicodeDecodeError from its
    line decoder; deltastream raises its typed StreamDecodeError."""
    good = json.dumps(chunk([{"index": 0, "delta": {"content": "a"}}])).encode()
    body = b"data: " + good.replace(b'"a"', b'"\xff"') + b"\n\ndata: [DONE]\n\n"
    with pytest.raises(UnicodeDecodeError):
        list(openai_events([body]))
    with pytest.raises(deltastream.native.StreamDecodeError):
        deltastream_result([body])


def test_sdk_fails_id_then_blank_lines() -> None:
    """The SDK never forgets the last ``id`` and dispatches an event on every blank line
    once it has seen one, so an ``id:`` followed by a keep-alive comment block (or just
    an extra blank line) becomes an event with empty data, which fails to parse."""
    first = json.dumps(chunk([{"index": 0, "delta": {"content": "a"}}]))
    text = f"id: 1\ndata: {first}\n\n: keep-alive\n\ndata: [DONE]\n\n"
    ours, theirs = both([text.encode()])
    assert ours["choices"][0]["content"] == "a"
    assert isinstance(theirs, json.JSONDecodeError)


def test_sdk_fails_get_final_completion_on_length_and_content_filter() -> None:
    """``get_final_completion()`` raises on ``finish_reason`` ``length`` or
    ``content_filter``; deltastream returns the completion (the differential test above
    compares the SDK's ``current_completion_snapshot`` for that reason)."""
    pieces = body_of(
        chunk([{"index": 0, "delta": {"role": "assistant", "content": "a"}}]),
        chunk([{"index": 0, "delta": {}, "finish_reason": "length"}]),
    )
    _, final = deltastream_result(pieces)
    assert final.choices[0].finish_reason == "length"
    state = openai_state(list(openai_events(pieces)))
    with pytest.raises(LengthFinishReasonError):
        state.get_final_completion()


# -- where deltastream differs from the SDK and is (arguably) wrong -------------------


def test_empty_logprobs_are_kept_like_the_sdk() -> None:
    pieces = body_of(
        chunk(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": {"content": [], "refusal": None},
                }
            ]
        ),
        chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    )
    _, final = deltastream_result(pieces)
    state = openai_state(list(openai_events(pieces)))
    theirs = state.current_completion_snapshot.choices[0].logprobs
    assert theirs is not None
    assert theirs.content == []
    logprobs = final.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content == []


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"data: {not json\n\n", id="malformed"),
        pytest.param(b'event: error\ndata: {"error": {"message": "boom"}}\n\n', id="in-band"),
    ],
)
def test_chunks_read_with_a_bad_event_are_delivered(bad: bytes) -> None:
    """One network read holds a good event and then a bad one: like the SDK, the
    stream hands over the good chunk first, then raises (with it in .partial)."""
    good = f"data: {json.dumps(chunk([{'index': 0, 'delta': {'content': 'a'}}]))}\n\n"
    pieces = [good.encode() + bad]
    sdk = openai_events(pieces)
    assert json.loads(next(sdk))["choices"][0]["delta"]["content"] == "a"  # delivered first

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=pieces[0]
        )

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    client = deltastream.Client(base_url="http://differential/v1", api_key="x", http_client=http)
    stream = client.chat.completions.create(model="m", messages=[], stream=True)
    delivered: list[Any] = []
    with pytest.raises(deltastream.native.APIError) as caught:
        delivered.extend(stream)
    assert [c.choices[0].delta.content for c in delivered] == ["a"]
    assert caught.value.events_received == 1
    assert caught.value.partial.choices[0].message.content == "a"
