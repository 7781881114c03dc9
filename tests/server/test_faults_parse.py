"""The fault header grammar, as a table."""

from __future__ import annotations

import pytest

from deltastream.server import FaultParseError, Faults, parse_faults

VALID: list[tuple[str | None, Faults]] = [
    (None, Faults()),
    ("", Faults()),
    ("none", Faults()),
    (" None ", Faults()),
    ("drop-after=3", Faults(drop_after=3)),
    ("drop-after=0", Faults(drop_after=0)),
    ("reset-after=2", Faults(reset_after=2)),
    ("stall-after=2:0.5", Faults(stall_after=(2, 0.5))),
    ("error-after=4", Faults(error_after=4)),
    ("garbage-after=1", Faults(garbage_after=1)),
    ("no-done", Faults(no_done=True)),
    ("headers-only", Faults(headers_only=True)),
    ("trickle=0.25", Faults(trickle=0.25)),
    ("content-type=Application/JSON", Faults(content_type="application/json")),
    ("huge-line=1048576", Faults(huge_line=1048576)),
    ("many-lines=100000", Faults(many_lines=100000)),
    ("status=503", Faults(status=503)),
    (
        "status=429; times=2; retry-after=1; retry-after-ms=10; key=t-1; should-retry=false",
        Faults(
            status=429, times=2, retry_after=1.0, retry_after_ms=10, key="t-1", should_retry=False
        ),
    ),
    ("  DROP-AFTER = 5 ;; no-done ; ", Faults(drop_after=5, no_done=True)),
    ("stall-after=1:0;drop-after=3", Faults(stall_after=(1, 0.0), drop_after=3)),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid(text: str | None, expected: Faults) -> None:
    assert parse_faults(text) == expected


INVALID: list[tuple[str, str]] = [
    ("explode", "unknown fault directive 'explode'"),
    ("drop-after", "needs a value"),
    ("drop-after=", "needs a value"),
    ("drop-after=-1", "whole number"),
    ("drop-after=1.5", "whole number"),
    ("drop-after=1;drop-after=2", "given twice"),
    ("no-done=1", "takes no value"),
    ("stall-after=3", "N:S"),
    ("stall-after=3:abc", "seconds"),
    ("stall-after=3:nan", "seconds"),
    ("trickle=601", "seconds between 0 and 600"),
    ("status=200", "between 400 and 599"),
    ("status=abc", "whole number"),
    ("times=2", "only make sense with status"),
    ("key=abc", "only make sense with status"),
    ("status=500;times=0", ">= 1"),
    ("status=500;key=has space", "1-128 characters"),
    ("status=500;should-retry=maybe", "true or false"),
    ("content-type=json", "media type"),
    ("huge-line=0", ">= 1"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(FaultParseError, match=message):
        parse_faults(text)


def test_no_faults_is_falsy() -> None:
    assert not Faults()
    assert parse_faults("no-done")
