"""Memory stays bounded against a hostile server (measured in a fresh process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
import deltastream
import deltastream.native

url, fault = sys.argv[1], sys.argv[2]
client = deltastream.Client(base_url=url, max_retries=0)
messages = [{"role": "user", "content": "hi"}]
client.chat.completions.create(model="m", messages=messages, stream=True).until_done()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    stream = client.chat.completions.create(
        model="m", messages=messages, stream=True, extra_headers={"X-Deltastream-Fault": fault}
    )
    for _ in stream:
        pass
except deltastream.native.APIError as exc:
    print(type(exc).__name__, exc.events_received)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024)
"""

MIB = 1024 * 1024


@pytest.mark.parametrize(
    "fault",
    [
        f"huge-line={1024 * MIB}",  # a 1 GiB line that never ends
        "many-lines=10000000",  # one event of ten million data lines
    ],
)
def test_a_hostile_stream_ends_in_a_typed_error_with_bounded_memory(
    server_url: str, fault: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, server_url, fault],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")},
    )
    assert result.returncode == 0, result.stderr
    error, growth = result.stdout.split("\n")[:2]
    assert error == "StreamDecodeError 1"
    # The default max_event_size is 16 MiB; the rest is the copies of one buffer.
    assert int(growth) < 64, f"RSS grew by {growth} MiB"
