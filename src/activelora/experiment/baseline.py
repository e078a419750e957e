"""The zero-shot baseline: the base model's test accuracy with no labels, computed once per
experiment folder (``zero_shot.json``), the point every learning curve should rise from."""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Config
from ..run.experiment_data import ExperimentData
from ..multiprocess.distributed import is_main_process, main_only
from ..run.sharded import evaluate_sharded
from ..atomic_files import atomic_write_json
from .report import ZERO_SHOT_FILE


def zero_shot_key(config: Config, data: ExperimentData) -> dict:
    """What the zero-shot accuracy depends on; a saved record with another key is stale."""
    return {"model": config.model.name, "data": config.data.source, "test_ids": [ex.id for ex in data.test],
            "max_new_tokens": config.eval.max_new_tokens, "chat_template": config.model.chat_template}


def saved_zero_shot(config: Config, data: ExperimentData, output: Path) -> dict | None:
    """The saved zero-shot record of ``output`` if it is still valid for this config, else None."""
    path = output / ZERO_SHOT_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == zero_shot_key(config, data):
            return saved
    return None


def zero_shot_baseline(config: Config, data: ExperimentData, model, tokenizer, output: Path, *,
                       progress: bool = True) -> dict:
    """The base model's test accuracy with no labels at all (adapter disabled): the point a
    learning curve should rise from. Computed once per experiment folder and kept in
    ``zero_shot.json``, keyed by what it depends on."""
    from ..models.lora import adapter_disabled
    # The main process decides (its folder is the one written), the others follow.
    saved = main_only(lambda: saved_zero_shot(config, data, output), "read zero_shot.json")
    if saved is not None:
        return saved
    with adapter_disabled(model):
        result = evaluate_sharded(model, tokenizer, data.task, data.test, batch_size=config.eval.batch_size,
                          max_new_tokens=config.eval.max_new_tokens, chat_template=config.model.chat_template,
                          progress="zero-shot evaluate" if progress else False)
    record = {"accuracy": result.accuracy, "n": result.n, "key": zero_shot_key(config, data)}
    if is_main_process():
        atomic_write_json(output / ZERO_SHOT_FILE, record)
    return record
