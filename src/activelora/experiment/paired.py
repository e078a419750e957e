"""Paired comparisons of two strategies' runs that share seeds, and so initial labels and the
test set (what the report's sentence under its table and the validity study say).

* :func:`t_interval`: the mean of per-seed differences with a 95% Student-t interval over
  seeds, ``mean ± t_{0.975, n-1} · s / sqrt(n)`` (s the sample standard deviation).
* :func:`mcnemar_exact`: McNemar's exact test on one pair of runs evaluated on the same test
  problems (McNemar 1947; the exact form is a two-sided binomial test of the discordant
  problems): with ``b`` problems only the strategy solved and ``c`` only the reference
  solved, ``p = min(1, 2 · P(X <= min(b, c)))`` for ``X ~ Binomial(b + c, 1/2)``.
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
