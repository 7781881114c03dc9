"""``import deltastream.types.chat`` and the like: openai's own modules, under our name.

``deltastream.types`` resolves to openai's ``types`` as an attribute (the package's
``__getattr__``), but an import statement looks for a submodule, which attributes do
not provide. So a finder answers for every ``deltastream.<name>...`` that is not one
of deltastream's own modules with openai's module of the same path: the very module
object, not a second copy of it (a second copy would define its classes again, and
``isinstance`` would fail across the two).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["install"]

_PACKAGE = "deltastream"


class _OpenAIModules(importlib.abc.MetaPathFinder):
    """Finds ``deltastream.X.Y`` as ``openai.X.Y`` when ``X`` is not deltastream's."""

    def __init__(self, own: frozenset[str]) -> None:
        self._own = own

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, rest = fullname.partition(".")
        if package != _PACKAGE or not rest or rest.partition(".")[0] in self._own:
            return None
        try:
            module = importlib.import_module(f"openai.{rest}")
        except ImportError:
            return None  # then it is not found, as for any module that does not exist
        return importlib.util.spec_from_loader(fullname, _Same(module))


class _Same(importlib.abc.Loader):
    """Loads a module that is already loaded: the import system names it under the
    alias in ``sys.modules``, and this puts back the spec it overwrites."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self._module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec


def install(package_dir: str) -> None:
    """Answer for openai's modules under deltastream's name, once per process. The
    finder goes first: the path finder would load a second copy of an openai module
    found through an aliased package's ``__path__``."""
    if any(isinstance(finder, _OpenAIModules) for finder in sys.meta_path):
        return
    own = frozenset(entry.name.partition(".")[0] for entry in Path(package_dir).iterdir())
    sys.meta_path.insert(0, _OpenAIModules(own))
