"""``deltastream replay FILE``: what a recorded chat stream adds up to.

The file's bytes go through the client's own protocol code
(:class:`deltastream.engine._protocol.ChunkStream`, the same path a live stream takes), and
what it accumulates is printed: per choice the content, refusal, reasoning, tool calls
with their arguments and the finish reason, then the usage, or the in-band error the
stream carried. ``--json`` prints the accumulated ``ChatCompletion`` as JSON instead.

Exit status: 0 for a stream that ended with ``data: [DONE]``, 1 for one that carried an
error, could not be decoded or ended early, 2 for a file that cannot be read or is a
Responses API stream (not supported yet).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final, TextIO

import httpx2

from deltastream.engine._errors import APIError
from deltastream.engine._protocol import ChunkStream
from deltastream.engine.types.chat import ChatCompletion, Choice

from ._body import split_blocks
from .backends.replay import MAX_FILE_BYTES

__all__ = ["is_responses_stream", "replay_file_main"]

_RESPONSES_MARKERS: Final = (b'"type":"response.', b'"type": "response.', b"event: response.")


def is_responses_stream(data: bytes) -> bool:
    """Whether the recording is a Responses API stream (``response.*`` events)."""
    for block in split_blocks(data[: 64 * 1024]):
        if any(marker in block for marker in _RESPONSES_MARKERS):
            return True
    return False


def _print_choice(choice: Choice, out: TextIO) -> None:
    message = choice.message
    print(f"choice {choice.index}:", file=out)
    if message.content is not None:
        print(f"  content: {message.content}", file=out)
    if message.refusal is not None:
        print(f"  refusal: {message.refusal}", file=out)
    reasoning = message.reasoning_content or message.reasoning or message.thinking
    if reasoning:
        print(f"  reasoning: {reasoning}", file=out)
    for call in message.tool_calls or []:
        function = call.function
        print(f"  tool call {call.id}: {function.name}({function.arguments})", file=out)
    if message.function_call is not None:
        call_text = f"{message.function_call.name}({message.function_call.arguments})"
        print(f"  function call: {call_text}", file=out)
    print(f"  finish_reason: {choice.finish_reason}", file=out)


def _print_completion(completion: ChatCompletion, out: TextIO) -> None:
    print(f"id: {completion.id}  model: {completion.model}", file=out)
    for choice in completion.choices:
        _print_choice(choice, out)
    usage = completion.usage
    if usage is not None:
        print(
            f"usage: prompt={usage.prompt_tokens} completion={usage.completion_tokens} "
            f"total={usage.total_tokens}",
            file=out,
        )


def _read(path: str) -> bytes:
    file = Path(path)
    if file.stat().st_size > MAX_FILE_BYTES:
        raise OSError(f"larger than {MAX_FILE_BYTES} bytes")
    return file.read_bytes()


def replay_file_main(path: str, json_output: bool) -> int:
    """Print what the recorded chat stream at ``path`` accumulates to; the exit status."""
    try:
        data = _read(path)
    except OSError as exc:
        print(f"deltastream replay: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    if is_responses_stream(data):
        print(
            f"deltastream replay: {path} is a Responses API stream; "
            "Responses streams are not supported yet",
            file=sys.stderr,
        )
        return 2
    request = httpx2.Request("POST", "http://replay.invalid/v1/chat/completions")
    stream = ChunkStream(httpx2.Response(200, request=request))
    error: APIError | None = None
    try:
        stream.feed(data)
        stream.end()
    except APIError as exc:
        error = exc
    completion = stream.accumulator.snapshot()
    if json_output:
        print(completion.to_json())
    else:
        _print_completion(completion, sys.stdout)
    if error is not None:
        print(
            f"error: {type(error).__name__}: {error}",
            file=sys.stdout if not json_output else sys.stderr,
        )
        return 1
    return 0
