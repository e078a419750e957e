"""Flags and set-up shared by the commands: config, model, data."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from ..config import Config, build_config, parse_set
from ..errors import ConfigError


def add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config, or a run folder's config.json (defaults < file < flags)")
    parser.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                        help="override any setting, e.g. --set train.epochs=3 (repeatable)")


def add_model_args(parser: argparse.ArgumentParser, adapter: bool = True) -> None:
    parser.add_argument("--model", help="smollm2-135m (embedded default), a Hugging Face id, or a folder")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="allow the model's own code from the hub (off unless asked)")
    if adapter:
        parser.add_argument("--adapter", metavar="DIR", help="a saved LoRA adapter folder")


def add_data_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--data", required=required,
                        help="arith, a .jsonl/.csv file or folder, or a Hugging Face dataset name")
    parser.add_argument("--split", help="split to read (default: train for train and score, test otherwise)")
    parser.add_argument("--task", help="gsm8k | boolq | obqa | plain | arith (default: inferred from --data)")
    parser.add_argument("--limit", type=_positive_int, help="use the first N rows")
    parser.add_argument("--question-field", help="field holding the question (default: question)")
    parser.add_argument("--answer-field", help="field holding the answer (default: answer)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


positive_int = _positive_int


def config_from_args(args: argparse.Namespace, flag_overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Defaults, then ``--config``, then the command's flags, then ``--set``."""
    overrides: dict[str, dict[str, Any]] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("model", "name", getattr(args, "model", None))
    put("model", "trust_remote_code", getattr(args, "trust_remote_code", None))
    put("data", "source", getattr(args, "data", None))
    put("data", "task", getattr(args, "task", None))
    put("data", "question_field", getattr(args, "question_field", None))
    put("data", "answer_field", getattr(args, "answer_field", None))
    for section, values in (flag_overrides or {}).items():
        for key, value in values.items():
            put(section, key, value)
    for section, values in parse_set(getattr(args, "set_items", []) or []).items():
        overrides.setdefault(section, {}).update(values)
    return build_config(getattr(args, "config", None), overrides)


def setup_logging() -> None:
    logging.basicConfig(level=os.environ.get("ACTIVELORA_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s")


def resolve_task_name(config: Config) -> str:
    from ..data.tasks import infer_task

    return config.data.task or infer_task(config.data.source)


def load_split(config: Config, split: str, limit: int | None):
    """(task, examples) for one split of the configured data source."""
    from ..data.loaders import load_examples
    from ..data.tasks import get_task

    task_name = resolve_task_name(config)
    task = get_task(task_name)
    examples = load_examples(
        config.data.source, split, task=task_name, limit=limit,
        question_field=config.data.question_field, answer_field=config.data.answer_field,
        id_field=config.data.id_field, seed=config.data.seed,
    )
    return task, examples


def same_rows(config: Config, split: str, other: str) -> bool:
    """Whether two split names read the same rows: the same name, or a single data file
    (a file has no splits; every name reads all of it)."""
    return split == other or Path(config.data.source).expanduser().is_file()


def load_model_and_adapter(config: Config, adapter: str | None = None):
    """The base model, with a saved adapter attached when one is named."""
    from ..models.loading import load_model
    from ..models.lora import load_adapter
    from ..models.prompt_format import check_prompt_format

    if adapter:  # before the model loads: a format mismatch is a one-line mistake, not minutes later
        check_prompt_format(adapter, model_name=config.model.name, chat_template=config.model.chat_template)
    model, tokenizer = load_model(config.model.name, dtype=config.model.dtype,
                                  trust_remote_code=config.model.trust_remote_code)
    if adapter:
        model = load_adapter(model, adapter)
    return model, tokenizer


def _check_parent(out: Path, flag: str) -> None:
    """The folders above ``out`` must exist or be creatable: the nearest existing one must be
    a writable folder. Nothing is created here."""
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {out}: cannot be created, {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {out}: cannot be created, {parent} is not writable")


def output_dir(path: str | None, flag: str = "--out") -> Path:
    """An output folder, checked before any work: not an existing file, and creatable."""
    if not path:
        raise ConfigError(f"{flag} is required")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{flag} {out}: exists and is not a folder")
    if not out.exists():
        _check_parent(out, flag)
    elif not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {out}: folder is not writable")
    return out


def output_file(path: str | None, flag: str = "--out") -> Path:
    """An output file, checked before any work: not an existing folder, its folder creatable."""
    if not path:
        raise ConfigError(f"{flag} is required")
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{flag} {out}: is a folder; expected a file name, e.g. {out / 'scores.jsonl'}")
    _check_parent(out, flag)
    return out
