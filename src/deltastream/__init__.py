"""deltastream: fast, loss-free streaming from OpenAI-compatible LLM APIs.

Two faces over one engine:

- ``from deltastream import OpenAI`` (or ``import deltastream as openai``): the
  official ``openai`` client, whose streams run on deltastream's engine. Every name
  openai exports that deltastream does not define itself resolves to openai's, and
  module-level settings (``deltastream.api_key = ...``) are openai's.
- ``from deltastream import Client`` (or ``deltastream.native``): the native client,
  msgspec types and no pydantic, the least CPU per chunk.

Names are imported on first use, so the native face never imports openai or pydantic.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types as _types
from typing import TYPE_CHECKING, Any

from . import _aliases
from ._version import __version__

if TYPE_CHECKING:
    from .dropin import (
        APIStreamError,
        AsyncAzureOpenAI,
        AsyncOpenAI,
        AsyncStream,
        AzureOpenAI,
        DeadlineError,
        OpenAI,
        Stream,
        StreamConnectionError,
        StreamDecodeError,
        StreamError,
        StreamGapError,
        StreamTruncatedError,
        accelerate,
    )
    from .engine._deadlines import Timeout
    from .engine._metrics import StreamMetrics
    from .engine._tee import TeeBufferFull
    from .native import AsyncClient, Client
    from .transport import AsyncHTTP11Transport, HTTP11Transport

# name -> the module that defines it
_OWN = {
    "APIStreamError": ".dropin",
    "AsyncAzureOpenAI": ".dropin",
    "AsyncOpenAI": ".dropin",
    "AsyncStream": ".dropin",
    "AzureOpenAI": ".dropin",
    "DeadlineError": ".dropin",
    "OpenAI": ".dropin",
    "Stream": ".dropin",
    "StreamConnectionError": ".dropin",
    "StreamDecodeError": ".dropin",
    "StreamError": ".dropin",
    "StreamGapError": ".dropin",
    "StreamTruncatedError": ".dropin",
    "accelerate": ".dropin",
    "Timeout": ".engine._deadlines",
    "StreamMetrics": ".engine._metrics",
    "TeeBufferFull": ".engine._tee",
    "AsyncClient": ".native",
    "Client": ".native",
    "AsyncHTTP11Transport": ".transport",
    "HTTP11Transport": ".transport",
}

__all__ = [
    "APIStreamError",
    "AsyncAzureOpenAI",
    "AsyncClient",
    "AsyncHTTP11Transport",
    "AsyncOpenAI",
    "AsyncStream",
    "AzureOpenAI",
    "Client",
    "DeadlineError",
    "HTTP11Transport",
    "OpenAI",
    "Stream",
    "StreamConnectionError",
    "StreamDecodeError",
    "StreamError",
    "StreamGapError",
    "StreamMetrics",
    "StreamTruncatedError",
    "TeeBufferFull",
    "Timeout",
    "__version__",
    "accelerate",
]


def __getattr__(name: str) -> Any:
    where = _OWN.get(name)
    if where is not None:
        value = getattr(importlib.import_module(where, __name__), name)
        globals()[name] = value
        return value
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import openai

    try:
        value = getattr(openai, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    # A resource of openai's module-level client (``openai.chat``), not one of the names
    # removed in v1 (``openai.ChatCompletion``), which openai also serves as proxies.
    if type(value).__module__ == "openai._module_client":
        return _module_resource_class()(name)
    return value


def __dir__() -> list[str]:
    import openai

    return sorted({*globals(), *_OWN, *dir(openai)})


# openai's module-level settings, read by its module-level client
_SETTINGS = frozenset(
    {
        "admin_api_key",
        "api_key",
        "api_type",
        "api_version",
        "azure_ad_token",
        "azure_ad_token_provider",
        "azure_endpoint",
        "base_url",
        "default_headers",
        "default_query",
        "http_client",
        "max_retries",
        "organization",
        "project",
        "timeout",
        "webhook_secret",
    }
)


class _Module(_types.ModuleType):
    """Module-level settings go to openai's module, as ``import openai`` users expect
    (``deltastream.api_key = ...`` configures the module-level client)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SETTINGS:
            setattr(importlib.import_module("openai"), name, value)
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Module
_aliases.install(__path__[0])


def _module_client() -> Any:
    import openai

    from .dropin import accelerate

    return accelerate(openai._load_client())


@functools.cache
def _module_resource_class() -> type[Any]:
    from openai._utils import LazyProxy

    class ModuleResource(LazyProxy[Any]):
        """A resource of openai's module-level client (``deltastream.chat``), with that
        client's streams on deltastream's engine."""

        def __init__(self, name: str) -> None:
            self._name = name

        def __load__(self) -> Any:
            return getattr(_module_client(), self._name)

    return ModuleResource
