"""``deltastream serve``: its flags and what running it does."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from ._faults import FaultParseError, parse_faults
from ._pace import parse_replay_pace
from ._thread import serve
from .backends.llama import ENV_MODEL, ModelNotFound, find_model

__all__ = ["add_serve_arguments", "local_model_problem", "run_serve"]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def _faults(text: str) -> str:
    try:
        parse_faults(text)
    except FaultParseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _replay_pace(text: str) -> float | None:
    try:
        return parse_replay_pace(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8000, help="port (0 picks a free one)")
    parser.add_argument(
        "--backend",
        choices=("scripted", "replay", "llama", "proxy"),
        default=None,
        help=(
            "default: llama when the local extra is installed, else scripted; "
            "scripted: deterministic replies; replay: recorded .sse files (model = file); "
            "llama: a real model on the CPU (see docs/server.md for the install); "
            "proxy: forward to --upstream (see docs/server.md)"
        ),
    )
    parser.add_argument(
        "--model",
        help=(
            "GGUF file for --backend llama (default: $DELTASTREAM_GGUF, else the model "
            "`deltastream download-model` fetched)"
        ),
    )
    parser.add_argument("--max-concurrent", type=int, default=1, help="llama: generations at once")
    parser.add_argument(
        "--default-max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="llama: tokens per reply when the request sets no limit (default 1024)",
    )
    parser.add_argument(
        "--queue-limit", type=int, default=8, help="llama: waiting requests before a 429"
    )
    parser.add_argument("--replay-dir", help="folder of recorded .sse files (replay backend)")
    parser.add_argument(
        "--replay-pace",
        type=_replay_pace,
        default=None,
        metavar="asfast|N",
        help="replay: 'asfast' (default) or N events per second (else --tokens-per-second)",
    )
    parser.add_argument("--upstream", help="proxy: base URL, e.g. https://api.openai.com/v1")
    parser.add_argument(
        "--upstream-api-key",
        help="proxy: send this key upstream (default: pass the request's Authorization on)",
    )
    parser.add_argument(
        "--record-dir", help="proxy: write each streamed body to DIR/<timestamp>-<model>.sse"
    )
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one line per request on stderr (default: on)",
    )
    parser.add_argument(
        "--legacy-function-call",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=(
            "with exactly one function tool, also carry the call in the legacy "
            "delta.function_call (default: on; see docs/server.md)"
        ),
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        help='fault directives for every request, e.g. "drop-after=5" (see docs/faults.md)',
    )
    parser.add_argument("--api-key", help="require Authorization: Bearer KEY on /v1 requests")
    parser.add_argument(
        "--tokens-per-second", type=_positive_float, help="pace of the scripted stream"
    )
    parser.add_argument(
        "--first-token-ms", type=_non_negative_float, help="delay before the first event"
    )


def local_model_problem(model_path: str | None = None) -> str | None:
    """Why the llama backend cannot start here, and what to do about it; None if it can."""
    if importlib.util.find_spec("llama_cpp") is None:
        return 'llama-cpp-python is not installed: pip install "deltastream[local]"'
    try:
        find_model(model_path)
    except ModelNotFound as exc:
        if model_path or os.environ.get(ENV_MODEL):
            return str(exc)
        return "no model file yet: run `deltastream download-model` (98 MB)"
    return None


def _default_backend(model_path: str | None) -> str | None:
    """The real model when it is installed, else scripted replies, saying why; ``None``
    (an error, already reported) for a model file that was named and does not exist."""
    problem = local_model_problem(model_path)
    if problem is None:
        return "llama"
    if model_path or os.environ.get(ENV_MODEL):
        print(f"deltastream serve: {problem}", file=sys.stderr)
        return None
    print(
        f"deltastream serve: no local model ({problem}). Using the scripted backend.",
        file=sys.stderr,
    )
    return "scripted"


def run_serve(args: argparse.Namespace) -> int:
    if args.backend is None:
        args.backend = _default_backend(args.model)
        if args.backend is None:
            return 2
    if args.backend == "replay" and not args.replay_dir:
        print("deltastream serve: --backend replay needs --replay-dir", file=sys.stderr)
        return 2
    if args.backend == "proxy" and not args.upstream:
        print("deltastream serve: --backend proxy needs --upstream URL", file=sys.stderr)
        return 2
    try:
        serve(
            args.host,
            args.port,
            args.backend,
            replay_dir=args.replay_dir,
            faults=args.faults,
            api_key=args.api_key,
            tokens_per_second=args.tokens_per_second,
            first_token_ms=args.first_token_ms,
            model_path=args.model,
            max_concurrent=args.max_concurrent,
            queue_limit=args.queue_limit,
            replay_pace=args.replay_pace,
            upstream=args.upstream,
            upstream_api_key=args.upstream_api_key,
            record_dir=args.record_dir,
            access_log=args.access_log,
            legacy_function_call=args.legacy_function_call,
            default_max_tokens=args.default_max_tokens,
        )
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl+C it caught once it has shut down gracefully.
        return 0
    except ValueError as exc:
        print(f"deltastream serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        address = f"{args.host}:{args.port}"
        print(f"deltastream serve: cannot listen on {address}: {exc}", file=sys.stderr)
        return 1
    return 0
