"""A local OpenAI-compatible streaming server, for development and tests.

Needs the ``server`` extra (Starlette and uvicorn)::

    from deltastream.server import create_app, run_in_thread

    with run_in_thread(create_app("scripted")) as base_url:
        ...  # base_url is "http://127.0.0.1:PORT/v1"

Backends: ``scripted`` (deterministic replies, tool calls from the tools' schemas),
``llama`` (a small local model), ``replay`` (recorded ``.sse`` bodies, byte for byte)
and ``proxy`` (an upstream server); Chat Completions and the Responses API. Faults are
injected per request with the ``X-Deltastream-Fault`` header or per server with
``default_faults``; the grammar is in ``docs/faults.md``.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"deltastream.server needs Starlette and uvicorn ({exc.name} is missing): "
        'pip install "deltastream[server]"'
    ) from exc

from ._app import CHUNK_SIZE_HEADER, FAULT_HEADER, create_app
from ._cli import add_serve_arguments, local_model_problem, run_serve
from ._faults import FaultParseError, Faults, parse_faults
from ._thread import run_in_thread, serve

__all__ = [
    "CHUNK_SIZE_HEADER",
    "FAULT_HEADER",
    "FaultParseError",
    "Faults",
    "add_serve_arguments",
    "create_app",
    "local_model_problem",
    "parse_faults",
    "run_in_thread",
    "run_serve",
    "serve",
]
