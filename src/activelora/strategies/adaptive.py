"""``adaptive``: representative picks (typiclust) until the model's uncertainty settles, then STAR.

Hacohen et al. (ICML 2022) show that the budget decides the strategy: with few labels,
typical examples teach more than uncertain ones; uncertainty pays once the model is good
enough for its uncertainty to mean something. The switch here is a label-free signal of
that, not a fixed round:

    ρ_t = Spearman( u_full^(t-1), u_full^(t) )   over the ids unlabelled at query t

the rank correlation between the tuned model's uncertainty on the pool in the previous
query round and now (each from that round's freshly trained adapter; mid-ranks for ties).
While a few dozen labels still reshape the model, which examples it finds hard changes from
round to round, and a ranking that changes with every batch says more about the batch than
about the examples; once the ranking is stable, the uncertainty has become a property of the
examples that more labels no longer overturn, and uncertainty sampling can use it. This is
the "stabilising predictions" idea (Bloodgood & Vijay-Shanker, "A Method for Stopping Active
Learning Based on Stabilizing Predictions and the Need for User-Adjustable Stopping", CoNLL
2009) applied to the uncertainty ranking, which is what STAR consumes. The rule:

* query 0 (no previous round to compare with): typiclust;
* query t >= 1: STAR if ``ρ_t >= strategy.adaptive_stability`` (default 0.8, a starting
  point, not tuned), else typiclust; ρ is undefined (and does not switch) when either
  ranking is constant;
* once a query has used STAR, every later one does (the switch latches), so a noisy ρ
  around the threshold cannot flip back and forth.

The decision, ρ_t and the threshold are recorded in the selection's ``info["adaptive"]``.
Everything it reads is saved per round in the run folder (the previous round's pool scores
and the previous selection's info, ``Needs.previous_scores``), so a resumed run decides the
same. The STAR part is :class:`~activelora.strategies.builtin.StarStrategy` with the run's
settings (its λ_t follows the query index t, as it would have); adaptive trains with STAR's
hybrid regularisation in every round, so the switch changes only what is selected. It scores
the pool with STAR's K MC passes and the base term every round, typiclust rounds included,
since ρ needs the tuned model's uncertainty each round.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..config import StrategyConfig
from .base import Needs, PoolView, Selection, register
from .batch import BatchStrategy
from .builtin import StarStrategy
from .remedies import percentile_ranks
from .typiclust import TypiClustStrategy


def rank_stability(previous: np.ndarray, current: np.ndarray) -> float | None:
    """Spearman's ρ of two score vectors: the Pearson correlation of their mid-ranks.
    None when either is constant (or has fewer than 2 entries): no ranking to compare."""
    a, b = percentile_ranks(previous), percentile_ranks(current)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@register
class AdaptiveStrategy(BatchStrategy):
    """Budget-aware: typiclust first, STAR once the uncertainty ranking is stable; see
    :mod:`~activelora.strategies.adaptive`."""

    name = "adaptive"

    def __init__(self, cfg: StrategyConfig):
        super().__init__(cfg)
        self.representative = TypiClustStrategy(self.cfg)
        self.uncertainty = StarStrategy(self.cfg)  # checks STAR's settings now, not at the first switch

    def needs(self) -> Needs:
        return dataclasses.replace(self.uncertainty.needs(), hidden_states=True, labelled_embeddings=True,
                                   previous_scores=True)

    def unapplied_switches(self) -> list[str]:
        """None: its STAR phase applies them (its typiclust phase, a set rule, does not)."""
        return []

    def decide(self, pool: PoolView) -> dict[str, Any]:
        """The phase of this query and why: ``{"phase", "signal", "threshold", "latched"}``."""
        previous = (pool.previous_info or {}).get("adaptive") or {}
        latched = previous.get("phase") == "star"
        signal = None
        if pool.previous_full_scores is not None:
            signal = rank_stability(pool.previous_full_scores, pool.require("full_scores", self.name))
        threshold = self.cfg.adaptive_stability
        star = latched or (signal is not None and signal >= threshold)
        return {"phase": "star" if star else "typiclust", "signal": signal, "threshold": threshold,
                "latched": latched}

    def choose(self, pool: PoolView, n: int) -> Selection:
        decision = self.decide(pool)
        chooser = self.uncertainty if decision["phase"] == "star" else self.representative
        selection = chooser.select(pool, n)
        selection.info = {**selection.info, "adaptive": decision}
        return selection
