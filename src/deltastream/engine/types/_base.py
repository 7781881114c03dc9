"""The base of every typed object: a msgspec Struct that is tolerant and dumps itself.

Objects are decoded straight from the event's bytes. Fields a server sends that we do
not model are not lost: top-level objects keep the raw JSON they were decoded from, and
``to_dict()`` / ``to_json()`` return that, unknown fields included.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

__all__ = ["BaseModel", "RawModel"]

_encoder = msgspec.json.Encoder()


class BaseModel(
    msgspec.Struct, kw_only=True, gc=False, omit_defaults=True, repr_omit_defaults=True
):
    """A decoded API object. ``model_dump*`` are aliases for code written for pydantic."""

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result

    def to_json(self) -> str:
        return _encoder.encode(self.to_dict()).decode()

    def model_dump(self) -> dict[str, Any]:
        return self.to_dict()

    def model_dump_json(self) -> str:
        return self.to_json()


class _RawSlot:
    # The raw JSON in a slot: a per-object __dict__ would cost more than the object
    # itself (~300 bytes), and make every chunk one more object for the cyclic
    # collector to track (a slot holding bytes cannot close a cycle).
    __slots__ = ("_raw",)


class RawModel(BaseModel, _RawSlot, kw_only=True, gc=False):
    """A top-level object that remembers the JSON it was decoded from (``_raw``)."""

    def to_dict(self) -> dict[str, Any]:
        raw: bytes | None = getattr(self, "_raw", None)
        if raw is None:
            return super().to_dict()
        try:
            result: dict[str, Any] = msgspec.json.decode(raw)
        except msgspec.DecodeError:  # a lone surrogate escape, which only json reads
            result = json.loads(raw)
        return result
