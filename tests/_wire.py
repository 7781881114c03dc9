"""Where the recorded streams are: ``../shared/wire`` from the project root, as the
project is laid out, or the folder ``DELTASTREAM_WIRE_DIR`` names."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

WIRE_DIR = Path(
    os.environ.get("DELTASTREAM_WIRE_DIR")
    or Path(__file__).resolve().parents[1] / ".." / "shared" / "wire"
).resolve()


def missing() -> str | None:
    """What to do when the recordings are not there; None when they are."""
    if (WIRE_DIR / "MANIFEST.json").is_file():
        return None
    return (
        f"the recorded streams the tests read are not at {WIRE_DIR}: they live beside "
        "the project, in ../shared/wire (clone the project next to shared/), or set "
        "DELTASTREAM_WIRE_DIR to the folder that holds MANIFEST.json"
    )


def manifest() -> Any:
    return json.loads((WIRE_DIR / "MANIFEST.json").read_text())
