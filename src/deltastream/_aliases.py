"""``import deltastream.types.chat`` and the like: openai's own modules, under our name.

``deltastream.types`` resolves to openai's ``types`` as an attribute (the package's
``__getattr__``), but an import statement looks for a submodule, which attributes do
not provide. So a finder answers for every ``deltastream.<name>...`` that is not one
of deltastream's own modules with openai's module of the same path: the very module
object, not a second copy of it (a second copy would define its classes again, and
``isinstance`` would fail across the two).

The finder and loader follow the import protocols without subclassing
``importlib.abc``, whose import pulls in ``importlib.resources`` and with it a dozen
modules: ``import deltastream`` would take twice as long.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

__all__ = ["install"]

_PACKAGE = "deltastream"


class _OpenAIModules:
    """Finds ``deltastream.X.Y`` as ``openai.X.Y`` when ``X`` is not deltastream's."""

    def __init__(self, own: frozenset[str]) -> None:
        self._own = own

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        package, _, rest = fullname.partition(".")
        first = rest.partition(".")[0]
        if package != _PACKAGE or not rest or first in self._own or first.startswith("__"):
            return None  # ours, or a dunder (``python -m deltastream`` asks for __main__)
        name = f"openai.{rest}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name == name:
                return None  # no such module: not found, as any other
            raise
        # Any other failure is raised as it is: returning None would let the path
        # finder load a second copy from the aliased package's __path__.
        loader: Any = _Same(module)
        return ModuleSpec(fullname, loader)


class _Same:
    """Loads a module that is already loaded: the import system names it under the
    alias in ``sys.modules``, and this puts back the spec it overwrites."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return self._module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec


def _own_names(package_dir: str) -> frozenset[str]:
    """The names of deltastream's own top-level modules and packages."""
    try:
        entries = os.listdir(package_dir)
    except OSError:  # not a directory: a zip archive (zipapp, pex, shiv)
        import pkgutil

        return frozenset(info.name for info in pkgutil.iter_modules([package_dir]))
    return frozenset(entry.partition(".")[0] for entry in entries)


def install(package_dir: str) -> None:
    """Answer for openai's modules under deltastream's name, once per process. The
    finder goes first: the path finder would load a second copy of an openai module
    found through an aliased package's ``__path__``."""
    if any(isinstance(finder, _OpenAIModules) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _OpenAIModules(_own_names(package_dir)))
