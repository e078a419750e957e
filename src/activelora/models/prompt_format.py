"""The prompt format an adapter was trained with, recorded beside it and checked when it is loaded.

An adapter learns the prompts it was trained on. The same adapter evaluated or scored with
prompts built another way (the chat template on or off) answers a different question, and its
accuracy and uncertainty change with no error anywhere: a `mix` run's adapter that answers 89%
of its pool's copy prompts right with the template answered 50% without it. So the loop and the ``train``
command record the format in ``train.json`` beside the adapter (``"prompt"``), and the commands
that load an adapter refuse a different one, in one line that names the setting to pass.
An adapter without the record (made before it existed, or elsewhere) is loaded unchecked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..config import Config
from ..errors import ConfigError

TRAIN_RECORD = "train.json"  # beside the adapter folder: the loop's round-r/, the train command's DIR/


def prompt_record(config: Config) -> dict[str, Any]:
    """What decides the prompts an adapter sees: the base model and whether its chat template wraps them."""
    return {"model": config.model.name, "chat_template": bool(config.model.chat_template)}


# How a caller is told to set each thing: the CLI's flags, and the Python API's arguments.
CLI_HINTS: dict[str, Callable[[Any], str]] = {
    "model": lambda name: f"--model {name}",
    "chat_template": lambda on: f"--set model.chat_template={'true' if on else 'false'}"}
API_HINTS: dict[str, Callable[[Any], str]] = {
    "model": lambda name: f"model={name!r}",
    "chat_template": lambda on: f"chat_template={bool(on)}"}


def check_prompt_format(adapter: str | Path, *, model_name: str | None, chat_template: bool, where: str = "--adapter",
                        hints: dict[str, Callable[[Any], str]] = CLI_HINTS) -> None:
    """Raise :class:`ConfigError` if ``train.json`` beside ``adapter`` records another prompt
    format than the caller's: another base model (``model_name``; None skips that check, for a
    model already loaded) or the chat template the other way. Nothing when there is no record."""
    path = Path(adapter).parent / TRAIN_RECORD
    try:
        recorded = json.loads(path.read_text()).get("prompt") if path.is_file() else None
    except (OSError, json.JSONDecodeError, AttributeError):
        return  # an unreadable record checks nothing; loading the adapter reports what is wrong with it
    if not isinstance(recorded, dict):
        return
    if model_name is not None and "model" in recorded and recorded["model"] != model_name:
        raise ConfigError(f"{where} {adapter}: trained on model {recorded['model']!r} ({path}), but this loads "
                          f"{model_name!r}: pass {hints['model'](recorded['model'])}")
    if "chat_template" in recorded and bool(recorded["chat_template"]) != bool(chat_template):
        on = bool(recorded["chat_template"])
        raise ConfigError(f"{where} {adapter}: trained with the chat template {'on' if on else 'off'} ({path}), "
                          f"but this builds its prompts with it {'off' if on else 'on'}: "
                          f"pass {hints['chat_template'](on)}")
