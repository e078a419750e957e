"""Domain exceptions.

Every user mistake (bad file, bad config, bad flag, pool too small) raises a subclass of
:class:`ActiveLoraError`. The CLI prints its message as one line and exits with code 2,
never a traceback. Each class also subclasses the matching builtin so library users can
catch ``ValueError``/``KeyError``/``OSError`` as usual.
"""

from __future__ import annotations


class ActiveLoraError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(ActiveLoraError, ValueError):
    """A bad setting: unknown key, wrong type, value out of range."""


class DataError(ActiveLoraError, ValueError):
    """A bad input file or row; the message names the file and line."""


class UnknownNameError(ActiveLoraError, KeyError):
    """A registry lookup (task, strategy, measure, schedule) for a name that does not exist."""


class PoolExhaustedError(ActiveLoraError, ValueError):
    """A query asks for more examples than the unlabelled pool holds."""

    def __init__(self, requested: int, available: int, where: str = "unlabelled pool"):
        super().__init__(
            f"{where} too small: {requested} examples requested, {available} available"
        )
        self.requested = requested
        self.available = available


class RunStateError(ActiveLoraError, RuntimeError):
    """A run directory that cannot be resumed as asked (different config, corrupt state)."""


class ModelLoadError(ActiveLoraError, OSError):
    """A model or adapter that cannot be found or loaded."""
