"""The Responses API on the generating backends: requests, events, stored responses."""

from ._routes import Generate, ResponsesAPI
from ._store import ResponseStore

__all__ = ["Generate", "ResponseStore", "ResponsesAPI"]
