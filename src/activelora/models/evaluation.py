"""Evaluate a model on labelled examples: greedy answers, accuracy, per-example confidence."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

from ..data.example import Example
from .generation import Generation, StepValues, generate
from .text import encode_prompt


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
    # The greedy answers behind the predictions (same order): a scorer can score these
    # instead of generating them again (see activelora.uncertainty.score_pool).
    generations: list[Generation] = field(default_factory=list, compare=False, repr=False)

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
    step_values: StepValues | None = None,
) -> EvalResult:
    """Greedy-decode every example and score it with the task's answer check.

    ``step_values``: recorded per answer position while decoding (see
    :func:`activelora.models.generation.generate`), e.g. a one-pass uncertainty measure.
    """
    if not examples:
        raise ValueError("evaluate: no examples")
    prompts = [encode_prompt(tokenizer, task.prompt(ex), chat_template) for ex in examples]
    generations = generate(
        model, tokenizer, prompts,
        max_new_tokens=max_new_tokens or task.max_new_tokens,
        stop_strings=task.stop_strings,
        batch_size=batch_size,
        progress="evaluate" if progress is True else progress,
        step_values=step_values,
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
    return EvalResult(accuracy=accuracy, n=len(predictions), predictions=predictions, generations=generations)
