"""Coverage-guided fuzzing of the SSE and chunk decoders with atheris (``make fuzz``).

    python fuzz/fuzz_decoders.py -max_total_time=300 -rss_limit_mb=1024 -timeout=10

The input's first bytes choose where it is cut into network pieces; the rest is the
body. Each input goes through ``SSEDecoder`` (with a small ``max_event_size``), the
chunk and completion decoders, and a whole ``ChunkStream``. Anything raised other than
deltastream's own typed errors is a finding: atheris stops and writes the crashing
input. ``-timeout`` catches hangs and ``-rss_limit_mb`` unbounded memory.
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    import httpx2

    from deltastream import APIError
    from deltastream.engine._decode import (
        EventDecodeError,
        decode_chat_chunk,
        decode_chat_completion,
        in_band_error,
    )
    from deltastream.engine._protocol import ChunkStream
    from deltastream.sse import EventTooLargeError, SSEDecoder

LIMIT = 4096
REQUEST = httpx2.Request("POST", "http://fuzz/v1/chat/completions")


def pieces_of(fdp: atheris.FuzzedDataProvider) -> list[bytes]:
    cuts = [fdp.ConsumeIntInRange(0, 255) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    body = fdp.ConsumeBytes(sys.maxsize)
    pieces, start = [], 0
    for cut in cuts:
        end = min(len(body), start + cut)
        pieces.append(body[start:end])
        start = end
    pieces.append(body[start:])
    return pieces


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    pieces = pieces_of(fdp)
    body = b"".join(pieces)

    decoder = SSEDecoder(LIMIT)
    try:
        for piece in pieces:
            for event in decoder.feed(piece):
                assert len(event.raw_data) <= LIMIT
                event.data  # noqa: B018 - decoding must not raise
        decoder.close()
    except EventTooLargeError:
        pass

    for decode in (decode_chat_chunk, decode_chat_completion):
        with contextlib.suppress(EventDecodeError):
            decode(body)
    in_band_error(body)

    core = ChunkStream(httpx2.Response(200, request=REQUEST), max_event_size=LIMIT)
    try:
        for piece in pieces:
            core.feed(piece)
            if core.done:
                break
        core.end()
    except APIError:
        pass
    core.accumulator.snapshot()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
