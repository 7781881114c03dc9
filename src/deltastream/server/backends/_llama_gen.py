"""One request's generation on one loaded GGUF model, run in a worker thread.

Rules:

- Everything that can make the request fail (a schema llama.cpp cannot take, a prompt
  longer than the context) is found in :meth:`Generation.run`'s first step, before any
  piece is emitted, so it becomes a 400 and never a broken stream.
- A choice that may call a function first decides (greedily, with a grammar that allows
  only the function names, and ``none`` under ``tool_choice="auto"``) whether and what to
  call; the arguments are then sampled under a grammar built from that function's
  schema, so they always parse and match it unless ``max_tokens`` cuts them (finish
  reason ``length``, as OpenAI's). After a tool result (the last message is the tool's),
  ``auto`` answers in text.
- ``response_format`` constrains text replies the same way; ``stop`` strings are held
  back until they can no longer begin a stop string, and never sent.
- Log-probabilities come from the model's logits for the position each token was
  sampled at (before the grammar and sampling settings), as OpenAI reports them.
- Usage counts the tokens that were sent (text or arguments), not the deciding ones.
"""

from __future__ import annotations

import codecs
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .._errors import APIError
from .._pieces import Arguments, Call, Finish, FinishReason, Piece, Text, TokenLogprob, Usage
from .._validate import ChatRequest, Tool, message_text
from . import _grammar

__all__ = ["DEFAULT_MAX_TOKENS", "N_CTX", "Generation", "Model", "StopFilter"]

N_CTX: Final = 2048
#: Without ``max_tokens``: enough for a short story by the shipped model, which ends
#: most of its stories in 300-600 tokens.
DEFAULT_MAX_TOKENS: Final = 1024
#: llama.cpp's usual sampling defaults, under OpenAI's temperature and top_p.
_TOP_K: Final = 40
_MIN_P: Final = 0.05
#: Names are at most 64 characters, so a few more tokens than that always suffice.
_MAX_DECISION_TOKENS: Final = 72
_NO_CALL: Final = "none"


class Model:
    """One loaded ``Llama`` and what generation needs from it."""

    def __init__(self, path: Path, n_threads: int) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm: Any = llama_cpp.Llama(
            model_path=str(path), n_ctx=N_CTX, n_threads=n_threads, verbose=False
        )
        self.vocab: Any = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.n_vocab: int = self.llm.n_vocab()
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.formatter: Any = None
        if template:
            eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode(errors="ignore")
            bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode(errors="ignore")
            self.formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def tokens(self, messages: list[dict[str, str]]) -> list[int]:
        if self.formatter is None:
            lines = [f"{m['role']}: {m['content']}" for m in messages]
            text = "\n".join([*lines, "assistant: "])
            return list(self.llm.tokenize(text.encode(), add_bos=True))
        prompt: str = self.formatter(messages=messages).prompt
        return list(self.llm.tokenize(prompt.encode(), add_bos=False, special=True))

    def is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def token_bytes(self, token: int) -> bytes:
        data: bytes = self.llm.detokenize([token])
        return data

    def logprob(self, token: int, top: int) -> TokenLogprob:
        """The sampled token's log-probability, and the ``top`` most likely ones."""
        import llama_cpp
        import numpy as np

        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).astype(np.float64)
        peak = logits.max()
        logprobs = logits - (peak + np.log(np.exp(logits - peak).sum()))
        best: list[tuple[str, float, tuple[int, ...]]] = []
        if top:
            indexes = np.argpartition(-logprobs, top)[:top]
            for index in sorted(indexes, key=lambda i: -logprobs[i]):
                raw = self.token_bytes(int(index))
                best.append((raw.decode(errors="replace"), float(logprobs[index]), tuple(raw)))
        raw = self.token_bytes(token)
        return TokenLogprob(
            raw.decode(errors="replace"), float(logprobs[token]), tuple(raw), tuple(best)
        )


class StopFilter:
    """Holds text back while it could still be the start of a stop string."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """(text that is safe to send, whether a stop string was found)."""
        self.held += text
        found = [i for i in (self.held.find(stop) for stop in self.stops) if i >= 0]
        if found:
            out, self.held = self.held[: min(found)], ""
            return out, True
        keep = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.held)), keep, -1):
                if self.held.endswith(stop[:size]):
                    keep = size
                    break
        cut = len(self.held) - keep
        out, self.held = self.held[:cut], self.held[cut:]
        return out, False

    def flush(self) -> str:
        out, self.held = self.held, ""
        return out


def _template_messages(request: ChatRequest) -> list[dict[str, str]]:
    """The conversation as role/content strings, which any chat template takes."""
    names = {}
    messages = []
    for message in request.messages:
        role = str(message.get("role"))
        text = message_text(message.get("content"))
        if role == "developer":
            role = "system"
        elif role == "assistant":
            calls = message.get("tool_calls")
            legacy = message.get("function_call")
            for call in calls if isinstance(calls, list) else [legacy] if legacy else []:
                function = call.get("function", call) if isinstance(call, dict) else {}
                name, arguments = function.get("name"), function.get("arguments")
                names[call.get("id") if isinstance(call, dict) else None] = name
                text += f"\nI called {name} with {arguments}."
        elif role in ("tool", "function"):
            name = message.get("name") or names.get(message.get("tool_call_id"), "the tool")
            role, text = "user", f"{name} returned: {text}"
        messages.append({"role": role, "content": text.strip()})
    return messages


def _with_instruction(messages: list[dict[str, str]], instruction: str) -> list[dict[str, str]]:
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": messages[0]["content"] + "\n\n" + instruction}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def _describe(tool: Tool) -> str:
    line = f"- {tool.name}"
    if tool.description:
        line += f": {tool.description}"
    properties = tool.parameters.get("properties")
    if isinstance(properties, dict) and properties:
        line += f" (arguments: {', '.join(str(name) for name in properties)})"
    return line


@dataclass(frozen=True, slots=True)
class _Prompt:
    tokens: list[int]
    grammar: str | None = None


class Generation:
    """The choices of one request, sampled one after another; pieces go to ``emit``."""

    def __init__(
        self,
        model: Model,
        request: ChatRequest,
        emit: Callable[[Piece], None],
        cancelled: threading.Event,
        *,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.model = model
        self.request = request
        self.default_max_tokens = default_max_tokens
        self.emit = emit
        self.cancelled = cancelled
        self.sent_tokens = 0
        self.base = _template_messages(request)

    # -- preparation: everything that can fail, before anything is sent ----------------

    def _prompt(self, instruction: str | None, grammar: str | None, what: str) -> _Prompt:
        messages = self.base if instruction is None else _with_instruction(self.base, instruction)
        tokens = self.model.tokens(messages)
        if len(tokens) + self._requested_tokens() > N_CTX:
            limit = self.request.max_tokens or 0
            raise APIError(
                400,
                f"This model's maximum context length is {N_CTX} tokens. However, you "
                f"requested {len(tokens) + limit} tokens ({len(tokens)} in the messages, "
                f"{limit} in the completion). Please reduce the length of the messages or "
                "completion.",
                param="messages",
                code="context_length_exceeded",
            )
        if grammar is not None and not _grammar.check(grammar, self.model.vocab):
            raise APIError(400, f"Invalid schema for {what}: llama.cpp rejected its grammar.")
        return _Prompt(tokens, grammar)

    def _requested_tokens(self) -> int:
        return self.request.max_tokens or 1

    def _prepare(self) -> tuple[_Prompt, dict[str, _Prompt], _Prompt | None]:
        """The text prompt, each callable tool's arguments prompt, the deciding prompt."""
        request = self.request
        form = request.output_format
        instruction = grammar = None
        if form is not None and form.kind == "json_schema" and form.schema is not None:
            schema_text = json.dumps(form.schema)
            instruction = f"Reply with JSON that matches this JSON schema: {schema_text}"
            grammar = _grammar.schema_grammar(
                form.schema, what=f"response_format '{form.name}'", param="response_format"
            )
        elif form is not None:
            instruction, grammar = "Reply with a JSON object.", _grammar.any_object()
        text = self._prompt(instruction, grammar, "response_format")
        calls: dict[str, _Prompt] = {}
        deciding = None
        tools = self._callable()
        # One list of the functions opens both kinds of prompt, so the arguments prompt
        # reuses the deciding prompt's evaluated tokens (llama.cpp keeps a shared prefix).
        listing = "You can call these functions:\n" + "\n".join(_describe(t) for t in tools)
        for tool in tools:
            instruction = f"{listing}\nCall {tool.name} now: reply with its arguments as JSON."
            grammar = _grammar.schema_grammar(
                tool.parameters, what=f"function '{tool.name}'", param="tools"
            )
            calls[tool.name] = self._prompt(instruction, grammar, f"function '{tool.name}'")
        if len(self._options(tools)) > 1:
            if request.tool_choice == "required":
                ask = "Reply with the name of the function to call."
            else:
                ask = (
                    "If calling one of them is the best way to answer the last message, reply "
                    f"with its name. Otherwise reply {_NO_CALL}."
                )
            options = self._options(tools)
            deciding = self._prompt(
                f"{listing}\n{ask}", _grammar.one_of(options), "the function names"
            )
        return text, calls, deciding

    def _callable(self) -> list[Tool]:
        """The tools this reply may call, before the model has a say."""
        request = self.request
        if not request.tools or request.tool_choice == "none":
            return []
        if request.tool_choice not in ("auto", "required"):
            return [tool for tool in request.tools if tool.name == request.tool_choice]
        last_role = request.messages[-1].get("role")
        if request.tool_choice == "auto" and last_role in ("tool", "function"):
            return []
        return list(request.tools)

    def _options(self, tools: list[Tool]) -> list[str]:
        names = [tool.name for tool in tools]
        if self.request.tool_choice == "auto" and names:
            names.append(_NO_CALL if _NO_CALL not in names else "no_function_call")
        return names

    # -- sampling -------------------------------------------------------------------------

    def _seed(self, choice: int) -> int:
        seed = self.request.seed
        return (seed + choice) % 2**32 if seed is not None else random.randrange(2**32)

    def _sample(
        self, prompt: _Prompt, *, seed: int, limit: int, greedy: bool = False
    ) -> Iterator[int]:
        """Sampled tokens; afterwards ``self.finish`` says why it ended."""
        from llama_cpp.llama_grammar import LlamaGrammar

        sampling = self.request.sampling
        temperature = 0.0 if greedy else sampling.temperature
        self.model.llm.set_seed(seed)
        tokens = self.model.llm.generate(
            prompt.tokens,
            temp=1.0 if temperature is None else temperature,
            top_p=1.0 if sampling.top_p is None else sampling.top_p,
            top_k=_TOP_K,
            min_p=_MIN_P,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            grammar=None if prompt.grammar is None else LlamaGrammar.from_string(prompt.grammar),
        )
        self.finish: FinishReason = "length"
        count = 0
        try:
            for token in tokens:
                if self.cancelled.is_set():
                    return
                if self.model.is_end(token):
                    self.finish = "stop"
                    return
                yield token
                count += 1
                if count >= limit:
                    return
        finally:
            tokens.close()

    def _limit(self, prompt: _Prompt) -> int:
        if self.request.max_tokens is not None:
            return self.request.max_tokens
        return max(1, min(self.default_max_tokens, N_CTX - len(prompt.tokens)))

    def _decide(self, prompt: _Prompt, options: list[str]) -> str:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        word = "".join(
            decoder.decode(self.model.token_bytes(token))
            for token in self._sample(prompt, seed=0, limit=_MAX_DECISION_TOKENS, greedy=True)
        )
        return word if word in options else options[-1]

    def _arguments(self, choice: int, prompt: _Prompt, seed: int) -> FinishReason:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""  # trailing whitespace, sent only if more JSON follows
        for token in self._sample(prompt, seed=seed, limit=self._limit(prompt)):
            self.sent_tokens += 1
            held += decoder.decode(self.model.token_bytes(token))
            body = held.rstrip()
            if body:
                self.emit(Arguments(choice, body))
                held = held[len(body) :]
        return "tool_calls" if self.finish == "stop" else "length"

    def _text(self, choice: int, prompt: _Prompt, seed: int) -> FinishReason:
        sampling = self.request.sampling
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = StopFilter(sampling.stop)
        pending: list[TokenLogprob] = []
        for token in self._sample(prompt, seed=seed, limit=self._limit(prompt)):
            self.sent_tokens += 1
            if sampling.logprobs:
                pending.append(self.model.logprob(token, sampling.top_logprobs))
            text, stopped = stops.feed(decoder.decode(self.model.token_bytes(token)))
            if stopped:
                if text:
                    self.emit(Text(choice, text, tuple(pending)))
                return "stop"
            if text:
                self.emit(Text(choice, text, tuple(pending)))
                pending = []
        rest = stops.flush() + decoder.decode(b"", final=True)
        if rest:
            self.emit(Text(choice, rest, tuple(pending)))
        return self.finish

    def run(self) -> None:
        text, calls, deciding = self._prepare()
        tools = self._callable()
        for choice in range(self.request.n):
            if self.cancelled.is_set():
                return
            seed = self._seed(choice)
            name = tools[0].name if len(tools) == 1 and not deciding else None
            if deciding is not None:
                name = self._decide(deciding, self._options(tools))
            if name in calls:
                call_id = "call_" + uuid.uuid4().hex[:24]
                self.emit(Call(choice, call_id, name))
                self.emit(Finish(choice, self._arguments(choice, calls[name], seed)))
            else:
                self.emit(Text(choice, ""))
                self.emit(Finish(choice, self._text(choice, text, seed)))
        self.emit(Usage(len(text.tokens), self.sent_tokens))
