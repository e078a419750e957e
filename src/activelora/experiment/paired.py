"""Paired comparisons of two strategies' runs that share seeds, and so initial labels and the
test set (what the report's sentence under its table and the validity study say).

* :func:`t_interval`: the mean of per-seed differences with a 95% Student-t interval over
  seeds, ``mean ± t_{0.975, n-1} · s / sqrt(n)`` (s the sample standard deviation).
* :func:`mcnemar_exact`: McNemar's exact test on one pair of runs evaluated on the same test
  problems (McNemar 1947; the exact form is a two-sided binomial test of the discordant
  problems): with ``b`` problems only the strategy solved and ``c`` only the reference
  solved, ``p = min(1, 2 · P(X <= min(b, c)))`` for ``X ~ Binomial(b + c, 1/2)``.
* :func:`label_saving`: the share of the reference's labels a strategy saves on one seed,
  ``1 − L_s / L_ref`` with ``L_ref`` the labels of the reference's last round and ``L_s`` the
  first round at which the strategy's accuracy reaches the reference's last-round accuracy
  (what issue 16's target counts: "reaches random's final accuracy with fewer labels").
  It is given twice: ``L_s`` at a round's end, where a user can stop, and interpolated
  linearly between rounds, which does not round a saving smaller than one round to zero.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


def t_interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and 95% Student-t interval over seeds (None with fewer than 2 values)."""
    from scipy.stats import t as student_t

    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(student_t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant problems (1 when none)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = math.fsum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class Discordance:
    """One pair of runs at the same round, over the test problems both answered."""

    only_strategy: int  # solved by the strategy's model, missed by the reference's
    only_reference: int  # the other way round
    both: int
    n: int

    @property
    def p_value(self) -> float:
        return mcnemar_exact(self.only_strategy, self.only_reference)


def read_correct(predictions: Path) -> dict[str, bool]:
    """``{test id: correct}`` from a round's ``predictions.jsonl``."""
    rows = (json.loads(line) for line in predictions.read_text().splitlines() if line.strip())
    return {str(row["id"]): bool(row["correct"]) for row in rows}


def discordance(strategy: dict[str, bool], reference: dict[str, bool]) -> Discordance:
    """Count the problems each model solved and the other missed (ids in both only)."""
    ids = sorted(set(strategy) & set(reference))
    only_s = sum(1 for i in ids if strategy[i] and not reference[i])
    only_r = sum(1 for i in ids if reference[i] and not strategy[i])
    both = sum(1 for i in ids if strategy[i] and reference[i])
    return Discordance(only_s, only_r, both, len(ids))


def labels_to_reach(curve: Sequence[tuple[int, float]], target: float) -> float | None:
    """The first label count at which the piecewise-linear curve through ``(labels, accuracy)``
    reaches ``target`` (None: never). Between the rounds ``(n0, a0)`` and ``(n1, a1)`` that
    bracket the first crossing, ``n0 + (target − a0) / (a1 − a0) · (n1 − n0)``.

    :func:`~activelora.experiment.report.labels_to_target` counts whole rounds, where a user
    can stop; this reads between them, so that a saving smaller than a round (1/6 of random's
    labels at 192 with rounds of 32) is not rounded to a whole round or to nothing."""
    for i, (n, accuracy) in enumerate(curve):
        if accuracy >= target:
            if i == 0:
                return float(n)
            n0, a0 = curve[i - 1]
            return n0 + (target - a0) / (accuracy - a0) * (n - n0)
    return None


@dataclass(frozen=True)
class LabelSaving:
    """One seed's :func:`label_saving`. ``labels`` is None when the strategy never reached the
    target within its rounds, and then ``saving`` is None: it needs more labels than were
    bought, so how much more (or whether it saves anything) is unknown."""

    target: float
    labels: int | None
    reference_labels: int
    reference_first_labels: int
    saving: float | None
    saving_vs_reference_first: float | None
    labels_interpolated: float | None
    saving_interpolated: float | None


def label_saving(strategy: Sequence[tuple[int, float]], reference: Sequence[tuple[int, float]]) -> LabelSaving:
    """``(labels, accuracy)`` per round of a strategy and of the reference on the same seed.

    The target is the reference's last-round accuracy; ``L_s`` the strategy's first round at or
    above it, counted in rounds because a user can stop only where a round ends. Two savings,
    since the reference's own curve is not monotone: against the labels of its last round
    (``1 − L_s / L_ref``) and against the first round where it already had that accuracy
    (``1 − L_s / L_ref_first``, the stricter one). ``labels_interpolated`` is ``L_s`` read
    between rounds (:func:`labels_to_reach`), and ``saving_interpolated`` is
    ``1 − labels_interpolated / L_ref``."""
    reference_labels, target = reference[-1]
    reference_first = next(labels for labels, accuracy in reference if accuracy >= target)
    reached = next((labels for labels, accuracy in strategy if accuracy >= target), None)
    interpolated = labels_to_reach(strategy, target)
    return LabelSaving(
        target=target, labels=reached, reference_labels=reference_labels, reference_first_labels=reference_first,
        saving=None if reached is None else 1 - reached / reference_labels,
        saving_vs_reference_first=None if reached is None else 1 - reached / reference_first,
        labels_interpolated=interpolated,
        saving_interpolated=None if interpolated is None else 1 - interpolated / reference_labels)
