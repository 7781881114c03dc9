"""The public surface is exactly what we mean to export: the drop-in at the top (every
other name openai exports resolves to openai's), the native face in deltastream.native,
which imports neither openai nor pydantic."""

from __future__ import annotations

import inspect
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import openai
import pytest

import deltastream
import deltastream.dropin
import deltastream.engine._errors
import deltastream.engine.types
import deltastream.native
import deltastream.sse

EXPECTED_TOP_LEVEL = {
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
}


def test_top_level_names_are_exactly_the_intended_ones() -> None:
    assert set(deltastream.__all__) == EXPECTED_TOP_LEVEL
    for name in deltastream.__all__:
        assert hasattr(deltastream, name), name


# openai's aliases of its clients: here the names of the native face, as documented.
NATIVE_NAMES = {"Client", "AsyncClient"}


@pytest.mark.parametrize(
    "name", sorted(n for n in openai.__all__ if not n.startswith("__") and n not in NATIVE_NAMES)
)
def test_every_name_openai_exports_resolves_to_openai_or_a_subclass(name: str) -> None:
    ours, theirs = getattr(deltastream, name), getattr(openai, name)
    if name in deltastream.__all__:
        assert isinstance(ours, type)
        assert issubclass(ours, theirs)
    else:
        assert ours is theirs


def test_module_level_names_and_settings_are_openais() -> None:
    assert deltastream.NOT_GIVEN is openai.NOT_GIVEN
    assert deltastream.omit is openai.omit
    assert deltastream.DefaultHttpxClient is openai.DefaultHttpxClient
    assert deltastream.pydantic_function_tool is openai.pydantic_function_tool
    assert deltastream.types.chat.ChatCompletionChunk is openai.types.chat.ChatCompletionChunk
    before = openai.api_key
    try:
        deltastream.api_key = "sk-module-level"
        assert openai.api_key == "sk-module-level"
        assert deltastream.api_key == "sk-module-level"
    finally:
        openai.api_key = before
    with pytest.raises(AttributeError):
        _ = deltastream.no_such_name


def test_the_clients_are_openais() -> None:
    pairs = [
        (deltastream.OpenAI, openai.OpenAI),
        (deltastream.AsyncOpenAI, openai.AsyncOpenAI),
        (deltastream.AzureOpenAI, openai.AzureOpenAI),
        (deltastream.AsyncAzureOpenAI, openai.AsyncAzureOpenAI),
        (deltastream.Stream, openai.Stream),
        (deltastream.AsyncStream, openai.AsyncStream),
    ]
    for ours, theirs in pairs:
        assert issubclass(ours, theirs)


@pytest.mark.parametrize("name", ["OpenAI", "AsyncOpenAI", "AzureOpenAI", "AsyncAzureOpenAI"])
def test_the_clients_have_openais_parameters(name: str) -> None:
    """Frameworks that pass a client the arguments its signature names see openai's."""
    ours, theirs = getattr(deltastream, name), getattr(openai, name)
    assert inspect.signature(ours) == inspect.signature(theirs)

    class Mine(ours):  # type: ignore[misc,valid-type]
        def __init__(self, model: str, **options: Any) -> None:
            super().__init__(**options)

    assert list(inspect.signature(Mine).parameters) == ["model", "options"]  # its own


def test_the_drop_ins_own_errors_are_openais() -> None:
    d = deltastream
    assert issubclass(d.APIStreamError, openai.APIError)
    assert issubclass(d.StreamConnectionError, openai.APIConnectionError)
    assert issubclass(d.StreamTruncatedError, openai.APIConnectionError)
    assert issubclass(d.StreamGapError, openai.APIConnectionError)
    assert issubclass(d.DeadlineError, openai.APITimeoutError)
    assert issubclass(d.StreamDecodeError, openai.APIResponseValidationError)
    for cls in (
        d.APIStreamError,
        d.StreamConnectionError,
        d.StreamTruncatedError,
        d.StreamGapError,
        d.DeadlineError,
        d.StreamDecodeError,
    ):
        assert issubclass(cls, d.StreamError)
        assert issubclass(cls, openai.OpenAIError)


def test_native_error_hierarchy_matches_the_official_sdk() -> None:
    n = deltastream.native
    assert issubclass(n.APIError, n.OpenAIError)
    assert issubclass(n.APIStatusError, n.APIError)
    assert issubclass(n.APIConnectionError, n.APIError)
    assert issubclass(n.APITimeoutError, n.APIConnectionError)
    assert issubclass(n.StreamTruncatedError, n.APIConnectionError)
    for cls in (
        n.BadRequestError,
        n.AuthenticationError,
        n.PermissionDeniedError,
        n.NotFoundError,
        n.ConflictError,
        n.UnprocessableEntityError,
        n.RateLimitError,
        n.InternalServerError,
    ):
        assert issubclass(cls, n.APIStatusError)
    assert deltastream.Client is n.Client
    assert deltastream.AsyncClient is n.AsyncClient


def test_the_native_face_imports_neither_openai_nor_pydantic() -> None:
    code = (
        "import sys; from deltastream import Client, AsyncClient, Timeout; "
        "import deltastream.native, deltastream.sse; "
        "print(sorted(m for m in ('openai', 'pydantic') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


_IMPORTS_UNDER_OUR_NAME = """
import sys
from deltastream.types.chat import ChatCompletionChunk
import openai.types.chat
assert ChatCompletionChunk is openai.types.chat.ChatCompletionChunk
assert sys.modules["deltastream.types.chat"] is openai.types.chat
assert openai.types.chat.__spec__.name == "openai.types.chat"  # openai's, not the alias
import deltastream.lib.streaming.chat as helpers, openai.lib.streaming.chat
assert helpers is openai.lib.streaming.chat
from deltastream.types import responses
assert responses is openai.types.responses
import deltastream.engine._sse
assert deltastream.engine._sse.__name__ == "deltastream.engine._sse"  # ours stays ours
try:
    import deltastream.no_such_module
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("a module that does not exist was found")
try:  # `python -m deltastream` asks for this one: never openai's
    import deltastream.__main__
except ModuleNotFoundError:
    assert "openai.__main__" not in sys.modules
class Failing:  # an openai module that exists but fails to import
    def find_spec(self, name, path, target=None):
        if name == "openai.types.failing":
            raise ImportError("it failed")
sys.meta_path.append(Failing())
try:
    import deltastream.types.failing
except ImportError as error:
    assert str(error) == "it failed", error  # not a second search, which finds nothing
    print("ok")
"""


def test_openais_modules_import_under_our_name_as_the_same_modules() -> None:
    """A program whose every ``openai`` import became ``deltastream`` (``from
    deltastream.types.chat import ...``) gets openai's modules, not copies."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTS_UNDER_OUR_NAME], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_package_imports_from_a_zip_archive(tmp_path: Path) -> None:
    """As zipapps (pex, shiv) carry it: its own modules are listed without a directory."""
    archive = tmp_path / "deltastream.zip"
    package = Path(deltastream.__file__).parent
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in package.rglob("*.py"):
            zipped.write(file, file.relative_to(package.parent))
    code = (
        f"import sys; sys.path.insert(0, {str(archive)!r}); import deltastream, deltastream.sse; "
        "from deltastream.types.chat import ChatCompletionChunk; print(deltastream.__file__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(archive))


def test_submodules_export_what_they_define() -> None:
    assert set(deltastream.sse.__all__) == {
        "DEFAULT_MAX_EVENT_SIZE",
        "AsyncEventSource",
        "EventSource",
        "ReconnectInfo",
        "ReconnectsExhaustedError",
        "aconnect",
        "connect",
        "EventTooLargeError",
        "SSEDecoder",
        "ServerSentEvent",
    }
    modules = (
        deltastream.engine._errors,
        deltastream.engine.types,
        deltastream.sse,
        deltastream.native,
        deltastream.dropin,
    )
    for module in modules:
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
