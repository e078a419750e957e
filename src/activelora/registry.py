"""A tiny name -> object registry shared by tasks, measures, strategies and schedules, and
:func:`import_plugins`, which imports the user's modules that add to them (``--plugin``)."""

from __future__ import annotations

import difflib
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from .errors import ConfigError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; an unknown name raises an error listing the valid ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items))
            close = difflib.get_close_matches(name, list(self._items), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint}; valid: {valid}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_plugins(plugins: Iterable[str]) -> list[ModuleType]:
    """Import the modules that register a user's own strategies (or tasks, measures).

    Each plugin is a module name (``my_package.strategies``) or the path of a ``.py`` file;
    a file's folder is put first on ``sys.path`` and the file imported by its name, so that
    ``--jobs`` workers (spawned with this ``sys.path``) can import it again by that name. A
    module already imported is not imported twice, so nothing registers twice.
    """
    modules = []
    for plugin in plugins:
        name = plugin
        if plugin.endswith(".py"):
            path = Path(plugin).expanduser()
            if not path.is_file():
                raise ConfigError(f"--plugin {plugin}: file not found")
            folder = str(path.resolve().parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            name = path.stem
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            raise ConfigError(f"--plugin {plugin}: cannot import it ({exc})") from None
    return modules
