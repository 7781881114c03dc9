"""API resources: ``client.chat.completions`` (and, later, ``client.responses``)."""

from .chat import AsyncChat, AsyncCompletions, Chat, Completions

__all__ = ["AsyncChat", "AsyncCompletions", "Chat", "Completions"]
