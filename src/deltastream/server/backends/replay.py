"""The replay backend: recorded ``.sse`` bodies sent back byte for byte.

The request's ``model`` names a file relative to the replay folder. Names that leave the
folder (``..``, absolute paths, symlinks pointing outside) are refused with the same 404
as a missing file, so nothing outside the folder can be read or probed.

A ``model`` that names no file but a model the proxy recorded (files named
``<timestamp>-<model>.sse``, see :mod:`._proxy`) replays the newest such recording, so
a test suite recorded once against a real server runs unchanged against the replay.

Recorded Responses streams can also be resumed the way OpenAI resumes background
responses: ``GET /v1/responses/{id}?stream=true&starting_after=N`` finds the recording
whose events carry that response id and sends its blocks from the first one with a
``sequence_number`` above N; without ``stream=true`` it answers the recording's last
``response`` object as JSON.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import msgspec

from .._body import split_blocks
from .._errors import APIError

__all__ = ["MAX_FILE_BYTES", "ReplayLibrary", "recording_suffix"]

MAX_FILE_BYTES: Final = 64 * 1024 * 1024
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


def recording_suffix(model: str) -> str:
    """``-<model>.sse``, the model made safe for a file name (what the proxy records)."""
    return "-" + (_UNSAFE.sub("_", model)[:100] or "model") + ".sse"


def _not_found(name: str, why: str) -> APIError:
    return APIError(
        404,
        f"The model `{name}` does not exist or you do not have access to it ({why}).",
        code="model_not_found",
    )


def _payload(block: bytes) -> dict[str, object] | None:
    """The JSON object a block's data lines carry, if they carry one."""
    lines = [
        line[5:].removeprefix(b" ") for line in block.splitlines() if line.startswith(b"data:")
    ]
    try:
        value = msgspec.json.decode(b"\n".join(lines)) if lines else None
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _response_of(payload: dict[str, object] | None) -> dict[str, object] | None:
    response = payload.get("response") if payload else None
    return response if isinstance(response, dict) else None


class ReplayLibrary:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"replay folder {str(root)!r} is not a directory")
        self._response_index: dict[str, Path] | None = None

    def resolve(self, name: str) -> Path:
        """The file ``name`` names inside the folder, or an OpenAI-shaped 404."""
        if not name or "\x00" in name or Path(name).is_absolute():
            raise _not_found(name, "not a relative path inside the replay folder")
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root):
            raise _not_found(name, "outside the replay folder")
        if not path.is_file():
            recorded = sorted(self.root.glob("*" + recording_suffix(name)))
            if "/" in name or not recorded:
                raise _not_found(name, "no such recording")
            path = recorded[-1].resolve()
            if not path.is_relative_to(self.root) or not path.is_file():
                raise _not_found(name, "outside the replay folder")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise APIError(400, f"Recording `{name}` is larger than {MAX_FILE_BYTES} bytes.")
        return path

    def models(self) -> list[str]:
        """The recordings, as the model names that replay them."""
        return sorted(path.relative_to(self.root).as_posix() for path in self.root.rglob("*.sse"))

    async def events(self, path: Path, starting_after: int | None = None) -> AsyncIterator[bytes]:
        """The file's bytes, one event block at a time.

        With ``starting_after``, only the blocks from the first one whose
        ``sequence_number`` is greater (none if no block's is).
        """
        blocks = list(split_blocks(await asyncio.to_thread(path.read_bytes)))
        if starting_after is not None:
            numbers = [(_payload(block) or {}).get("sequence_number") for block in blocks]
            later = [i for i, n in enumerate(numbers) if isinstance(n, int) and n > starting_after]
            blocks = blocks[later[0] :] if later else []
        for block in blocks:
            yield block

    def _index_responses(self) -> dict[str, Path]:
        index: dict[str, Path] = {}
        for name in self.models():
            path = self.root / name
            for block in split_blocks(path.read_bytes()):
                response = _response_of(_payload(block))
                if response and isinstance(response.get("id"), str):
                    index.setdefault(str(response["id"]), path)
                    break
        return index

    def find_response(self, response_id: str) -> Path:
        """The recording of response ``response_id``, or OpenAI's 404."""
        if self._response_index is None:
            self._response_index = self._index_responses()
        path = self._response_index.get(response_id)
        if path is None:
            raise APIError(404, f"Response with id '{response_id}' not found.", param="response_id")
        return path

    def final_response(self, path: Path) -> dict[str, object]:
        """The last ``response`` object the recording carries."""
        final: dict[str, object] = {}
        for block in split_blocks(path.read_bytes()):
            final = _response_of(_payload(block)) or final
        return final
