"""The base of strategies that choose a batch as a set, not as the top n of one score.

TypiClust, ProbCover and the cluster-weighted rule decide each pick from the picks before it
(a cluster is covered, a ball's points are covered, a cluster's quota is spent), so there is
no per-example score to rank. They write :meth:`BatchStrategy.choose`; :meth:`select` keeps
the contract every strategy has: ``n`` checked, the pool's ``meta`` refused, a cold-start
round drawn as ``random`` draws it, and the result checked (n distinct ids of the pool).
The remedies and the diversity step of :meth:`Strategy.select` (``skip_top``,
``target_quantile``, ``strata``, ``diversity_factor``, ``random_share``) act on one score's
ranking and do not apply.
"""

from __future__ import annotations

import numpy as np

from .base import PoolView, Selection, Strategy, child_rng, switches_on
from .geometry import as_points


class BatchStrategy(Strategy):
    """A strategy whose :meth:`choose` returns the whole batch."""

    def choose(self, pool: PoolView, n: int) -> Selection:
        """``n`` distinct ids of ``pool`` (1 <= n <= len(pool)), in the order picked."""
        raise NotImplementedError

    def score(self, pool: PoolView):  # pragma: no cover - a set rule has no per-example score
        raise TypeError(f"strategy {self.name!r} chooses a batch as a set; call select()")

    def unapplied_switches(self) -> list[str]:
        """A set rule picks the batch as a whole, with no ranking for the switches to change."""
        return switches_on(self.cfg)

    def embedding_sets(self, pool: PoolView) -> tuple[np.ndarray, np.ndarray]:
        """(unlabelled, labelled) prompt embeddings, checked: what the set rules cluster."""
        return (as_points(pool.require("embeddings", self.name), "PoolView.embeddings"),
                as_points(pool.require("labelled_embeddings", self.name), "PoolView.labelled_embeddings"))

    def select(self, pool: PoolView, n: int) -> Selection:
        n = self.check_n(pool, n)
        early = self.selection_without_scores(pool, n)
        if early is not None:
            return early
        selection = self.choose(pool, n)
        if len(selection.ids) != n or len(set(selection.ids)) != n or not set(selection.ids) <= set(pool.ids):
            raise RuntimeError(f"strategy {self.name!r} chose {len(selection.ids)} ids, not {n} distinct pool ids")
        return selection


def id_order(ids: list[str]) -> np.ndarray:
    """Each position's rank in sorted-id order: the tie-break that does not depend on the
    order of the pool list (lower rank wins a tie)."""
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[np.argsort(np.asarray(ids, dtype=object), kind="stable")] = np.arange(len(ids))
    return ranks
