"""``python -m deltastream.server``: the same as ``deltastream serve``."""

from __future__ import annotations

import argparse

from ._cli import add_serve_arguments, run_serve


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deltastream.server",
        description="Local OpenAI-compatible streaming server.",
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
