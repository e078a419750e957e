"""A :class:`~activelora.config.Config` from Python: defaults, a YAML file or a Config, then
overrides in the CLI's ``--set section.key=value`` form. Validated exactly as the CLI's."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from ..config import Config, build_config, merge, parse_set, resolve_auto
from ..errors import ConfigError

# {"train.epochs": 1}, {"train": {"epochs": 1}}, or ["train.epochs=1", ...] (the CLI's --set).
Overrides = Union[Mapping[str, Any], Sequence[str], None]


def nested_overrides(overrides: Overrides) -> dict[str, dict[str, Any]]:
    """The overrides as ``{section: {key: value}}``, whichever of the three forms they came in."""
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        raise ConfigError(f"overrides: expected a mapping or a list of 'section.key=value' strings, "
                          f"got the string {overrides!r}")
    if not isinstance(overrides, Mapping):
        items = list(overrides)
        if not all(isinstance(item, str) for item in items):
            raise ConfigError("overrides: a list must hold 'section.key=value' strings")
        return parse_set(items)
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, dot, name = str(key).partition(".")
        if dot:
            if not name:
                raise ConfigError(f"overrides: {key!r} must be section.key, e.g. train.epochs")
            nested.setdefault(section, {})[name] = value
        elif isinstance(value, Mapping):
            nested.setdefault(section, {}).update(value)
        else:
            raise ConfigError(f"overrides: {key!r} must be section.key (e.g. train.epochs) or a section "
                              f"with a mapping of its keys, got {value!r}")
    return nested


def load_config(source: Config | str | Path | None = None, overrides: Overrides = None) -> Config:
    """Defaults, then ``source`` (a YAML file or a :class:`Config`), then ``overrides``.

    ``overrides`` take the CLI's ``--set`` forms: ``["loop.rounds=2"]``, ``{"loop.rounds": 2}``
    or ``{"loop": {"rounds": 2}}``. An unknown key raises :class:`~activelora.errors.ConfigError`
    naming it and the nearest valid one, as on the command line.
    """
    nested = nested_overrides(overrides)
    if source is None or isinstance(source, (str, Path)):
        source = build_config(source)  # defaults, then the YAML file (as --config)
    elif not isinstance(source, Config):
        raise ConfigError(f"config: expected a Config or the path of a YAML file, got {type(source).__name__}")
    return resolve_auto(merge(source, nested, source="overrides") if nested else source)
