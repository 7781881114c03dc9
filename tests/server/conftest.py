"""Fixtures for the server tests; the servers themselves are in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest


@pytest.fixture(scope="session")
def http() -> Iterator[httpx2.Client]:
    """One pooled client for all server tests (creating a client per request is slow)."""
    with httpx2.Client(timeout=10.0) as client:
        yield client
