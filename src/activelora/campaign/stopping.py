"""When to stop buying labels: a budget, a dev-set target, and a label-free signal.

The label-free signal is *stabilising predictions* (Bloodgood & Vijay-Shanker, "A Method for
Stopping Active Learning Based on Stabilizing Predictions and the Need for User-Adjustable
Stopping", CoNLL 2009): keep a fixed set of unlabelled examples (the stop set), record each
round's model's answers on it, and measure the agreement of consecutive rounds with Cohen's
kappa. Once kappa has stayed at or above a threshold over a window of consecutive rounds,
further labels are unlikely to change the model's behaviour much. The paper uses a
threshold of 0.99 and a window of three rounds; both are campaign settings here.

For generated answers the "label" compared is the answer the task extracts (e.g. the final
number); an answer the task cannot read is a category of its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence


def cohen_kappa(first: Sequence[str | None], second: Sequence[str | None]) -> float:
    """Cohen's kappa of two labelings of the same items (Cohen 1960)::

        kappa = (p_o - p_e) / (1 - p_e)
        p_o = (1/n) sum_i [a_i == b_i]                      observed agreement
        p_e = sum_k (n_a(k) / n) (n_b(k) / n)               agreement expected by chance

    with ``None`` a category like any other. When both labelings put every item in one and the
    same category (``p_e == 1``) kappa is undefined; it is taken as 1 (they agree completely).
    """
    if len(first) != len(second):
        raise ValueError(f"cohen_kappa: {len(first)} and {len(second)} labels")
    n = len(first)
    if n == 0:
        raise ValueError("cohen_kappa: no items")
    observed = sum(a == b for a, b in zip(first, second)) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[k] * count_b.get(k, 0) for k in count_a) / (n * n)
    if expected >= 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class StopSettings:
    budget: int | None = None  # labels to ask for, in all
    target_accuracy: float | None = None  # on the dev set
    kappa_threshold: float = 0.99
    window: int = 3  # consecutive round pairs at or above the threshold


def stabilising(kappas: Sequence[float | None], settings: StopSettings) -> bool:
    """Whether the last ``window`` kappas are all at or above the threshold."""
    recent = [k for k in kappas if k is not None][-settings.window:]
    return len(recent) >= settings.window and all(k >= settings.kappa_threshold for k in recent)


def stop_reasons(rounds: Sequence[dict[str, Any]], asked: int, settings: StopSettings) -> list[str]:
    """Every stopping criterion that is met now, as short sentences (empty: keep going)."""
    reasons = []
    if settings.budget is not None and asked >= settings.budget:
        reasons.append(f"label budget spent ({asked} of {settings.budget} asked)")
    accuracies = [r.get("dev_accuracy") for r in rounds if r.get("dev_accuracy") is not None]
    if settings.target_accuracy is not None and accuracies and accuracies[-1] >= settings.target_accuracy:
        reasons.append(f"dev accuracy {accuracies[-1]:.3f} reached the target {settings.target_accuracy:.3f}")
    if stabilising([r.get("stop_kappa") for r in rounds], settings):
        reasons.append(f"predictions on the stop set stable: kappa >= {settings.kappa_threshold} "
                       f"over the last {settings.window} rounds")
    return reasons
