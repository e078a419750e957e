"""Answers given at selection, checked against the labels once they exist (``Needs.selection_feedback``).

When a batch is chosen, the model of that moment answers each chosen example greedily (the
round's adapter, or the base model for the initial random set, when no adapter exists yet).
The answers are kept in ``round-<r>/selection_answers.json`` before the selection is recorded,
so a resumed run has them. Once a label is given, :func:`answer_checks` compares the two with the
task's answer check. The model had not trained on these examples when it answered, so this
is held-out accuracy on the labels the user bought, at the cost of one greedy answer per label.
A campaign's suggestions are the same answers (:mod:`activelora.campaign.round`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..atomic_files import atomic_write_json
from ..config import Config
from ..data.example import Example
from ..models.generation import generate
from ..models.text import encode_prompt

SELECTION_ANSWERS_FILE = "selection_answers.json"


def greedy_answers(model, tokenizer, task, examples: Sequence[Example], config: Config, *,
                   label: str, progress: bool) -> list[str]:
    """The model's greedy answer text for each example (the caller turns dropout off)."""
    if not examples:
        return []
    prompts = [encode_prompt(tokenizer, task.prompt(ex), config.model.chat_template) for ex in examples]
    generations = generate(model, tokenizer, prompts, max_new_tokens=config.eval.max_new_tokens or task.max_new_tokens,
                           stop_strings=task.stop_strings, batch_size=config.eval.batch_size,
                           progress=label if progress else False)
    return [g.text.strip() for g in generations]


def write_selection_answers(round_dir: Path, ids: Sequence[str], answers: Sequence[str], answered_by: str) -> None:
    """Keep a batch's answers at selection; ``answered_by`` names the model, for the reader."""
    atomic_write_json(Path(round_dir) / SELECTION_ANSWERS_FILE,
                      {"ids": list(ids), "answers": list(answers), "answered_by": answered_by})


def read_selection_answers(round_dir: Path) -> dict[str, str]:
    """``{id: answer}`` kept for a round's batch; empty if the round kept none."""
    path = Path(round_dir) / SELECTION_ANSWERS_FILE
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    return dict(zip(saved["ids"], saved["answers"]))


def answer_checks(task, examples: Sequence[Example], answers: Mapping[str, Any],
                  labels: Mapping[str, Any]) -> np.ndarray:
    """Per example: 1.0 if its answer at selection passes the task's check against its label,
    0.0 if not, NaN when there is no answer or no label (not yet given, or skipped)."""
    out = np.full(len(examples), np.nan)
    for j, example in enumerate(examples):
        answer, label = answers.get(example.id), labels.get(example.id)
        if answer is not None and label is not None:
            out[j] = float(bool(task.is_correct(answer, replace(example, answer=label))))
    return out
