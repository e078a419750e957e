"""``star-weighted``: STAR's own choice, inside the cluster-weighted rule's quotas.

Why. STAR ranks the pool by one score and buys its top n. On a skewed pool with several skills
(the embedded ``mix``) that concentrates every batch: early rounds follow the base model's
term, and the untuned model is most unsure of the *format* of the commonest skill, which LoRA
teaches first; later rounds follow the tuned model's term, which points at the hardest skill.
On mix's seed 0 star's 192 labels held 90 copy and 5 successor (random: 79 and 22.6 over five
seeds), it lost successor (0.25 against 0.90) and ended about 22 of 360 test problems per round
behind random (docs/results.md, "Issue 16: eighth session"). ``cluster-weighted``, which splits
every batch over clusters of the prompts by the tuned model's uncertainty there, was level
with random over five seeds. This rule keeps that split and lets STAR's score choose inside it:

1. Clusters and quotas, as steps 1-3 of :mod:`~activelora.strategies.cluster_weighted` with the
   tuned model's MC uncertainty ``u_full`` (STAR's second term): k-means into
   ``C = strategy.weighted_clusters`` clusters of the prompt embeddings, cluster weight
   ``w_c`` = the mean of ``norm(u_full)`` over its members, quotas ``q_c ∝ w_c`` by largest
   remainder (:func:`~activelora.strategies.cluster_weighted.allocate`).
2. Within cluster c, its ``q_c`` members with the highest STAR score
   ``λ_t·norm(u_base) + (1-λ_t)·norm(u_full)`` (``norm`` over the whole unlabelled pool, as
   ``star`` computes it), ties to the lower id. Clusters are visited by descending weight.

The quotas use the tuned term alone on purpose: the base term is what piles a batch onto the
commonest format, so it may rank examples within a cluster but not decide how many a cluster
gets. It trains and scores as ``star`` does (hybrid regularisation; K MC passes and the base
term), so against ``star`` only the split of the batch differs. Recorded per pick: the STAR
score; in ``info``: λ_t and each cluster's size, mean normalised ``u_full`` and quota.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import StrategyConfig
from .base import Needs, PoolView, Selection, register
from .batch import BatchStrategy, child_rng, id_order
from .builtin import StarStrategy
from .cluster_weighted import cluster_quotas
from .geometry import as_points
from .normalize import check_finite
from .remedies import kmeans


def quota_top_picks(labels: np.ndarray, weight: np.ndarray, quota: np.ndarray, scores: np.ndarray,
                    tie_rank: np.ndarray) -> np.ndarray:
    """Positions picked: clusters by descending weight (ties: lower cluster), each giving its
    ``quota[c]`` members of highest ``scores`` (ties: lower ``tie_rank``)."""
    picks: list[int] = []
    for c in sorted(range(len(quota)), key=lambda c: (-weight[c], c)):
        if quota[c] == 0:
            continue
        members = np.flatnonzero(labels == c)
        best_first = members[np.lexsort((tie_rank[members], -scores[members]))]
        picks.extend(best_first[: int(quota[c])].tolist())
    return np.asarray(picks, dtype=np.int64)


@register
class StarWeightedStrategy(BatchStrategy):
    """STAR's score within cluster-weighted quotas: see :mod:`~activelora.strategies.star_weighted`."""

    name = "star-weighted"

    def __init__(self, cfg: StrategyConfig):
        super().__init__(cfg)
        self.star = StarStrategy(self.cfg)  # checks STAR's settings (schedule, measure) now

    def needs(self) -> Needs:
        return dataclasses.replace(self.star.needs(), hidden_states=True, labelled_embeddings=True)

    def choose(self, pool: PoolView, n: int) -> Selection:
        points = as_points(pool.require("embeddings", self.name), "PoolView.embeddings")
        star_scores, star_info = self.star.score(pool)
        star_scores = np.asarray(star_scores, dtype=np.float64)
        check_finite(star_scores, pool.ids, what=f"strategy {self.name!r} STAR scores")
        full = np.asarray(pool.require("full_scores", self.name), dtype=np.float64)
        labels = kmeans(points, self.cfg.weighted_clusters, child_rng(pool))
        weight, quota, sizes = cluster_quotas(labels, full, n)
        picks = quota_top_picks(labels, weight, quota, star_scores, id_order(pool.ids))
        clusters = [{"size": int(sizes[c]), "uncertainty": float(weight[c]), "quota": int(quota[c])}
                    for c in range(len(quota))]
        return Selection(ids=[pool.ids[i] for i in picks], scores=[float(star_scores[i]) for i in picks],
                         info={**star_info, "star_weighted": {"clusters": clusters}})
