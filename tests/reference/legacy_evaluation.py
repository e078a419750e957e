# FROZEN TEST ORACLE: the pre-issue-8 src/activelora/evaluation.py, kept verbatim (imports made absolute)
# from commit a0338fe so the faster code can be tested against it and timed beside it.
# Do not edit or import it from the library.
"""Evaluate a model on labelled examples: greedy answers, accuracy, per-example confidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from activelora.data.example import Example
from reference.legacy_generation import generate
from activelora.models.text import encode_prompt


@dataclass(frozen=True)
class Prediction:
    id: str
    prediction: str  # the generated answer text
    extracted: str | None  # the final answer the task read from it
    answer: str | None  # the gold final answer
    correct: bool
    confidence: float  # p(y|x) of the generated sequence
    confidence_normalized: float  # exp(mean token log-prob)
    tokens: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    n: int
    predictions: list[Prediction]

    def metrics(self) -> dict:
        return {"accuracy": self.accuracy, "n": self.n}


def evaluate(
    model,
    tokenizer,
    task,
    examples: Sequence[Example],
    *,
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    chat_template: bool = False,
    progress: bool | str = True,
) -> EvalResult:
    """Greedy-decode every example and score it with the task's answer check."""
    if not examples:
        raise ValueError("evaluate: no examples")
    prompts = [encode_prompt(tokenizer, task.prompt(ex), chat_template) for ex in examples]
    generations = generate(
        model, tokenizer, prompts,
        max_new_tokens=max_new_tokens or task.max_new_tokens,
        stop_strings=task.stop_strings,
        batch_size=batch_size,
        progress="evaluate" if progress is True else progress,
    )
    predictions = [
        Prediction(
            id=ex.id,
            prediction=gen.text,
            extracted=task.extract(gen.text),
            answer=task.gold(ex),
            correct=bool(task.is_correct(gen.text, ex)),
            confidence=gen.confidence,
            confidence_normalized=gen.confidence_normalized,
            tokens=len(gen.token_ids),
        )
        for ex, gen in zip(examples, generations)
    ]
    accuracy = sum(p.correct for p in predictions) / len(predictions)
    return EvalResult(accuracy=accuracy, n=len(predictions), predictions=predictions)
