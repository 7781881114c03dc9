"""Responses API events from pieces, numbered as OpenAI numbers them.

Pure: :class:`ResponseBuilder` takes pieces and returns event payloads, each with the
next ``sequence_number``; it keeps the response object they add up to. The shapes follow
OpenAI's recordings: ``response.created`` and ``response.in_progress`` (for a background
response ``response.created`` says ``queued`` and ``response.queued`` follows), then per
output item ``output_item.added``, its deltas and ``.done`` events with ``output_index``,
``content_index`` and ``item_id``, then ``response.completed`` (or ``response.incomplete``
when ``max_output_tokens`` cut the reply, ``response.failed`` when the backend failed).

Only choice 0 exists here: the Responses API has no ``n``.
"""

from __future__ import annotations

import copy
import time
from typing import Final

from .._chat import logprob_entry
from .._pieces import Arguments, Call, Finish, Piece, Text, Usage
from .._wire import random_id
from ._request import ResponsesRequest

__all__ = ["ResponseBuilder"]

Event = dict[str, object]

_TERMINAL_STATUSES: Final = frozenset({"completed", "incomplete", "failed", "cancelled"})


class ResponseBuilder:
    def __init__(self, request: ResponsesRequest, response_id: str | None = None) -> None:
        self.request = request
        self.id = response_id or random_id("resp_", 48)
        self.sequence = 0
        self.output: list[dict[str, object]] = []
        self.logprobs: list[dict[str, object]] = []
        self._texts: list[str] = []
        echo = request.echo
        self.response: dict[str, object] = {
            "id": self.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "queued" if request.background else "in_progress",
            "background": echo["background"],
            "error": None,
            "incomplete_details": None,
            "instructions": echo["instructions"],
            "max_output_tokens": echo["max_output_tokens"],
            "max_tool_calls": None,
            "model": request.model,
            "output": self.output,
            "parallel_tool_calls": echo["parallel_tool_calls"],
            "previous_response_id": echo["previous_response_id"],
            "prompt_cache_key": None,
            "reasoning": {"effort": None, "summary": None},
            "safety_identifier": None,
            "service_tier": "default",
            "store": echo["store"],
            "temperature": echo["temperature"],
            "text": echo["text"],
            "tool_choice": echo["tool_choice"],
            "tools": echo["tools"],
            "top_logprobs": echo["top_logprobs"],
            "top_p": echo["top_p"],
            "truncation": echo["truncation"],
            "usage": None,
            "user": echo["user"],
            "metadata": echo["metadata"],
        }

    @property
    def status(self) -> str:
        return str(self.response["status"])

    @property
    def finished(self) -> bool:
        return self.status in _TERMINAL_STATUSES

    def snapshot(self) -> dict[str, object]:
        return copy.deepcopy(self.response)

    def _event(self, kind: str, **fields: object) -> Event:
        event: Event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _with_response(self, kind: str) -> Event:
        return self._event(kind, response=self.snapshot())

    def start(self) -> list[Event]:
        """The events sent as soon as the response exists."""
        events = [self._with_response("response.created")]
        kind = "response.queued" if self.request.background else "response.in_progress"
        return [*events, self._with_response(kind)]

    def begin(self) -> list[Event]:
        """The events sent when generation starts (a background response leaves the queue)."""
        if self.response["status"] != "queued":
            return []
        self.response["status"] = "in_progress"
        return [self._with_response("response.in_progress")]

    # -- output items ---------------------------------------------------------------------

    def _open(self) -> dict[str, object] | None:
        if self.output and self.output[-1]["status"] == "in_progress":
            return self.output[-1]
        return None

    def _where(self, item: dict[str, object]) -> dict[str, object]:
        return {"item_id": item["id"], "output_index": len(self.output) - 1}

    def _part(self) -> dict[str, object]:
        """The open message's text so far, as its content part."""
        return {
            "type": "output_text",
            "annotations": [],
            "logprobs": list(self.logprobs),
            "text": "".join(self._texts),
        }

    def _seal(self, status: str) -> dict[str, object] | None:
        """End the open item in the response object, without an event (None: none open)."""
        item = self._open()
        if item is None:
            return None
        item["status"] = status
        if item["type"] == "message":
            item["content"] = [self._part()]
        return item

    def _close(self, status: str = "completed") -> list[Event]:
        item = self._seal(status)
        if item is None:
            return []
        events: list[Event] = []
        if item["type"] == "message":
            where = {**self._where(item), "content_index": 0}
            part = self._part()
            text_done = {"text": part["text"], "logprobs": list(self.logprobs)}
            events.append(self._event("response.output_text.done", **where, **text_done))
            events.append(self._event("response.content_part.done", **where, part=dict(part)))
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    **self._where(item),
                    arguments=item["arguments"],
                )
            )
        index = len(self.output) - 1
        events.append(
            self._event("response.output_item.done", output_index=index, item=copy.deepcopy(item))
        )
        return events

    def _open_message(self) -> list[Event]:
        item: dict[str, object] = {
            "id": random_id("msg_", 48),
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        self._texts = []
        self.logprobs = []
        self.output.append(item)
        index = len(self.output) - 1
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        return [
            self._event("response.output_item.added", output_index=index, item=copy.deepcopy(item)),
            self._event(
                "response.content_part.added", **self._where(item), content_index=0, part=part
            ),
        ]

    def _text(self, piece: Text) -> list[Event]:
        item = self._open()
        events: list[Event] = []
        if item is None or item["type"] != "message":
            events += self._close()
            events += self._open_message()
            item = self.output[-1]
        if piece.text:
            self._texts.append(piece.text)
            entries = [logprob_entry(lp) for lp in piece.logprobs] if self._logprobs else []
            self.logprobs += entries
            where = {**self._where(item), "content_index": 0}
            events.append(
                self._event(
                    "response.output_text.delta", **where, delta=piece.text, logprobs=entries
                )
            )
        return events

    @property
    def _logprobs(self) -> bool:
        return self.request.sampling.logprobs

    def _call(self, piece: Call) -> list[Event]:
        events = self._close()
        item: dict[str, object] = {
            "id": random_id("fc_", 48),
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": piece.call_id,
            "name": piece.name,
        }
        self.output.append(item)
        index = len(self.output) - 1
        events.append(
            self._event("response.output_item.added", output_index=index, item=copy.deepcopy(item))
        )
        return events

    def _arguments(self, piece: Arguments) -> list[Event]:
        item = self._open()
        assert item is not None
        assert item["type"] == "function_call"
        item["arguments"] = str(item["arguments"]) + piece.text
        return [
            self._event(
                "response.function_call_arguments.delta", **self._where(item), delta=piece.text
            )
        ]

    def feed(self, piece: Piece) -> list[Event]:
        if isinstance(piece, Text):
            return self._text(piece) if piece.choice == 0 else []
        if isinstance(piece, Call):
            return self._call(piece)
        if isinstance(piece, Arguments):
            return self._arguments(piece)
        if isinstance(piece, Usage):
            self.response["usage"] = {
                "input_tokens": piece.prompt_tokens,
                "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0},
                "output_tokens": piece.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": piece.prompt_tokens + piece.completion_tokens,
            }
            return []
        return self._finish(piece)

    def _finish(self, piece: Finish) -> list[Event]:
        if piece.reason == "length":
            self.response["incomplete_details"] = {"reason": "max_output_tokens"}
            return self._close("incomplete")
        return self._close()

    # -- the end --------------------------------------------------------------------------

    def end(self) -> list[Event]:
        """The terminal event, once every piece (the usage last) has been fed."""
        events = self._close()
        incomplete = self.response["incomplete_details"] is not None
        self.response["status"] = "incomplete" if incomplete else "completed"
        kind = "response.incomplete" if incomplete else "response.completed"
        return [*events, self._with_response(kind)]

    def fail(self, message: str) -> list[Event]:
        """``response.failed`` after an error in the backend."""
        events = self._close("incomplete")
        self.response["status"] = "failed"
        self.response["error"] = {"code": "server_error", "message": message}
        return [*events, self._with_response("response.failed")]

    def cancel(self, message: str) -> list[Event]:
        """The response was cancelled: an ``error`` event, the next number, ends its stream.
        The open item ends in the response object only; its ``.done`` events are not sent."""
        self._seal("incomplete")
        self.response["status"] = "cancelled"
        return [self._event("error", code="response_cancelled", message=message, param=None)]

    def output_messages(self) -> list[dict[str, object]]:
        """The output as chat messages, for a conversation that goes on from here."""
        messages: list[dict[str, object]] = []
        for item in self.output:
            if item["type"] == "message":
                content = item.get("content")
                parts = content if isinstance(content, list) else []
                text = "".join(str(part.get("text", "")) for part in parts)
                messages.append({"role": "assistant", "content": text})
            else:
                call = {"name": item["name"], "arguments": item["arguments"]}
                tool_call = {"id": item["call_id"], "type": "function", "function": call}
                messages.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
        return messages
