"""The ``deltastream`` command: ``chat`` streams an answer, ``serve`` runs the local server."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TextIO

from ._version import __version__
from .engine._errors import OpenAIError
from .native._client import Client

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args)
    if args.command == "replay":
        return _replay(args)
    return _chat(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltastream", description="Stream answers from OpenAI-compatible APIs."
    )
    parser.add_argument("--version", action="version", version=f"deltastream {__version__}")
    commands = parser.add_subparsers(dest="command")

    chat = commands.add_parser(
        "chat",
        help="stream a chat answer to stdout",
        description=(
            "Stream the answer to PROMPT from the server named by OPENAI_BASE_URL (or "
            "--base-url); with neither, from a local server started for the purpose."
        ),
    )
    chat.add_argument("prompt", help="the user message")
    chat.add_argument("--model", default=os.environ.get("DELTASTREAM_MODEL", "local"))
    chat.add_argument("--base-url", default=None, help="default: $OPENAI_BASE_URL")
    chat.add_argument("--system", default=None, help="a system message to send first")
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--stats", action="store_true", help="print TTFT and tokens/s at the end")
    chat.add_argument("--json", action="store_true", help="print each chunk as a JSON line")

    serve = commands.add_parser("serve", help="run the local OpenAI-compatible server")
    try:
        from .server._cli import add_serve_arguments
    except ImportError:
        serve.set_defaults(server_missing=True)
    else:
        add_serve_arguments(serve)
    replay = commands.add_parser(
        "replay", help="print what a recorded .sse chat stream accumulates to"
    )
    replay.add_argument("file", help="a recorded chat stream (.sse)")
    replay.add_argument("--json", action="store_true", help="print the ChatCompletion as JSON")
    return parser


def _replay(args: argparse.Namespace) -> int:
    try:
        from .server._replay_cli import replay_file_main
    except ImportError:
        print(
            'deltastream replay needs the server extra: pip install "deltastream[server]"',
            file=sys.stderr,
        )
        return 1
    return replay_file_main(args.file, args.json)


def _serve(args: argparse.Namespace) -> int:
    if getattr(args, "server_missing", False):
        print(
            'deltastream serve needs the server extra: pip install "deltastream[server]"',
            file=sys.stderr,
        )
        return 1
    from .server._cli import run_serve

    return run_serve(args)


@contextlib.contextmanager
def _base_url(explicit: str | None) -> Iterator[str]:
    """The server to talk to; a local one, started here, when none is configured."""
    configured = explicit or os.environ.get("OPENAI_BASE_URL")
    if configured:
        yield configured
        return
    try:
        from .server import create_app, run_in_thread
    except ImportError as exc:
        raise SystemExit(
            "deltastream: no OPENAI_BASE_URL is set and the local server is not installed "
            f'({exc}); pip install "deltastream[server]" or set OPENAI_BASE_URL'
        ) from None
    try:
        app = create_app("llama")
        what = "a local server with a small model (SmolLM2-135M-Instruct)"
    except (ImportError, ValueError) as exc:
        print(
            f"deltastream: no local model ({exc}); for real generated text: "
            'pip install "deltastream[local]". Using the scripted backend.',
            file=sys.stderr,
        )
        # A human pace, so the scripted answer visibly streams token by token.
        app = create_app(tokens_per_second=40)
        what = "a local server (scripted replies)"
    with run_in_thread(app) as url:
        print(f"deltastream: no OPENAI_BASE_URL set; using {what} at {url}", file=sys.stderr)
        yield url


def _chat(args: argparse.Namespace) -> int:
    messages = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.prompt})
    extra: dict[str, object] = {"stream_options": {"include_usage": True}}
    if args.max_tokens is not None:
        extra["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        extra["temperature"] = args.temperature
    if args.seed is not None:
        extra["seed"] = args.seed
    out = sys.stdout
    try:
        with _base_url(args.base_url) as url, Client(base_url=url) as client:
            started = time.perf_counter()
            first: float | None = None
            with client.chat.completions.create(
                model=args.model, messages=messages, stream=True, extra_body=extra
            ) as stream:
                for chunk in stream:
                    if args.json:
                        out.write(chunk.to_json() + "\n")
                        continue
                    for choice in chunk.choices:
                        text = choice.delta.content
                        if choice.index == 0 and text:
                            if first is None:
                                first = time.perf_counter()
                            out.write(text)
                            out.flush()
                final = stream.current_snapshot
            ended = time.perf_counter()
    except OpenAIError as exc:
        print(f"\ndeltastream: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    if not args.json:
        out.write("\n")
    if args.stats:
        tokens = final.usage.completion_tokens if final.usage else None
        _print_stats(sys.stderr, started, first, ended, tokens)
    return 0


def _print_stats(
    err: TextIO, started: float, first: float | None, ended: float, tokens: int | None
) -> None:
    ttft = "n/a" if first is None else f"{(first - started) * 1000:.0f} ms"
    parts = [f"time to first token: {ttft}", f"total: {ended - started:.2f} s"]
    if tokens is not None:
        parts.append(f"completion tokens: {tokens}")
        if first is not None and ended > first:
            parts.append(f"{tokens / (ended - first):.1f} tokens/s")
    print("; ".join(parts), file=err)


if __name__ == "__main__":
    raise SystemExit(main())
