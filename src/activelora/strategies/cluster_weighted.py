"""``cluster-weighted``: more labels for the clusters the tuned model is least sure of.

Inspiration: the inverse-confidence weighting across tasks of Arabelly, Nemade, Nowak & Zhang,
"Improving Task Diversity in Label Efficient Supervised Finetuning of LLMs" (arXiv 2507.21482,
2025), which splits a budget over an instruction pool's *task labels* by the model's
confidence on each task, and the diversity-based experimental design of Bhatt et al., "An
Experimental Design Framework for Label-Efficient Supervised Finetuning of Large Language
Models" (ACL Findings 2024). A pool has no task labels, so clusters of the prompt embeddings
stand in for them. The rule is ours, not a reproduction:

1. Cluster the unlabelled pool into ``C = strategy.weighted_clusters`` clusters by k-means
   (:func:`~activelora.strategies.remedies.kmeans`, seeded from the run's rng).
2. Confidence of example i: ``conf_i = 1 - norm(u_i)``, ``u`` the tuned model's uncertainty
   (``strategy.measure``; ``norm`` the min-max normalisation over the pool, as STAR's).
   A cluster's confidence ``conf_c`` is its members' mean.
3. Cluster c's weight is ``w_c = 1 - conf_c`` (its mean normalised uncertainty); the batch
   is split ``q_c ∝ w_c``, by largest remainder (ties: the larger weight, then the lower
   cluster), no cluster given more than it holds, the excess split again over the others.
   A pool whose uncertainties are all equal gives every cluster the same weight. The size of
   a cluster does not enter: a rare mode the model is unsure of gets as many labels as a
   common one, which is the point on a skewed pool.
4. Within a cluster, its ``q_c`` picks are TypiClust's on the cluster alone (``q_c``
   sub-clusters, the most typical point of each): representative examples of the weak mode,
   not its outliers, and not ``q_c`` near-duplicates of one dense spot.

Each selected id's recorded score is its cluster's weight ``w_c``. Embeddings: the base
model's prompt hidden states (``Needs.labelled_embeddings``), as for ``typiclust``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import StrategyConfig
from .base import Needs, PoolView, Selection, register
from .batch import BatchStrategy, child_rng, id_order
from .builtin import MC_MEASURES, _check_mc
from .geometry import as_points
from .normalize import min_max_normalize
from .remedies import kmeans
from .typiclust import typiclust_picks


def allocate(weights: np.ndarray, available: np.ndarray, n: int) -> np.ndarray:
    """Integer quotas ``q`` (C,) with ``sum q = n``, ``q_c <= available_c``, ``q ∝ weights``.

    Largest remainder (ties: larger weight, then lower index); a quota above what a cluster
    holds is cut and the excess split again, by weight, over the clusters with room. Zero
    weights everywhere count as equal weights. Needs ``n <= available.sum()``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    quota = np.zeros(len(weights), dtype=np.int64)
    left = n
    while left > 0:
        room = available - quota
        open_ = np.flatnonzero(room > 0)
        w = weights[open_]
        w = np.ones_like(w) if w.sum() <= 0 else w
        exact = left * w / w.sum()
        share = np.floor(exact).astype(np.int64)
        extra = left - int(share.sum())
        by_remainder = sorted(range(len(open_)), key=lambda j: (-(exact[j] - share[j]), -w[j], open_[j]))
        for j in by_remainder[:extra]:
            share[j] += 1
        share = np.minimum(share, room[open_])
        quota[open_] += share
        left -= int(share.sum())
    return quota


def cluster_weighted_picks(points: np.ndarray, uncertainty: np.ndarray, n: int, clusters: int,
                           rng: np.random.Generator, tie_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Positions into ``points`` (N, d) in the order picked (clusters by descending weight),
    each pick's cluster weight, and details for the run log. Needs ``1 <= n <= N``."""
    return weighted_picks_from_clusters(points, kmeans(points, clusters, rng), uncertainty, n, rng, tie_rank)


def cluster_quotas(labels: np.ndarray, uncertainty: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 2-3 of the rule: each cluster's weight ``w_c`` (its mean normalised uncertainty),
    quota ``q_c`` (:func:`allocate`) and size, for cluster labels (N,) in ``0..C-1``."""
    k = int(labels.max()) + 1
    confidence = 1.0 - min_max_normalize(uncertainty)
    sizes = np.bincount(labels, minlength=k)
    mean_confidence = np.bincount(labels, weights=confidence, minlength=k) / np.maximum(sizes, 1)
    weight = np.where(sizes > 0, 1.0 - mean_confidence, 0.0)  # an empty cluster (rare in k-means) gets nothing
    return weight, allocate(weight, sizes, n), sizes


def weighted_picks_from_clusters(points: np.ndarray, labels: np.ndarray, uncertainty: np.ndarray, n: int,
                                 rng: np.random.Generator, tie_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Steps 2-4 of the rule for given cluster labels (N,); ``rng`` seeds the sub-clusters."""
    weight, quota, sizes = cluster_quotas(labels, uncertainty, n)
    picks, scores = typical_picks_by_quota(points, labels, weight, quota, rng, tie_rank)
    info: dict[str, Any] = {"clusters": [{"size": int(sizes[c]), "confidence": float(1.0 - weight[c]),
                                          "quota": int(quota[c])} for c in range(len(quota))]}
    return picks, scores, info


def typical_picks_by_quota(points: np.ndarray, labels: np.ndarray, weight: np.ndarray, quota: np.ndarray,
                           rng: np.random.Generator, tie_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: cluster c's ``quota[c]`` picks are TypiClust's on its members alone, clusters
    taken by descending ``weight`` (then index). Returns the positions and each pick's
    cluster weight."""
    k = len(quota)
    picks: list[int] = []
    scores: list[float] = []
    for c in sorted(range(k), key=lambda c: (-weight[c], c)):
        if quota[c] == 0:
            continue
        members = np.flatnonzero(labels == c)
        within, _, _ = typiclust_picks(points[members], points[:0], int(quota[c]), rng, tie_rank[members])
        picks.extend(members[within].tolist())
        scores.extend([float(weight[c])] * int(quota[c]))
    return np.asarray(picks, dtype=np.int64), np.asarray(scores)


@register
class ClusterWeightedStrategy(BatchStrategy):
    """Inverse-confidence weighting across embedding clusters: see
    :mod:`~activelora.strategies.cluster_weighted`. Trains plain LoRA; the uncertainty is one
    deterministic pass (``strategy.mc_samples`` passes for bald and vote)."""

    name = "cluster-weighted"

    def __init__(self, cfg: StrategyConfig):
        super().__init__(cfg)
        self.mc_samples = self.cfg.mc_samples if self.cfg.measure in MC_MEASURES and self.cfg.mc_dropout else 1
        _check_mc(self.name, self.cfg.measure, self.mc_samples)

    def needs(self) -> Needs:
        return Needs(full_scores=True, mc_samples=self.mc_samples, measure=self.cfg.measure, hidden_states=True,
                     labelled_embeddings=True, b_l2=self.cfg.b_l2, normalize=self.cfg.normalize,
                     answer_end=self.cfg.answer_end, mc_estimator=self.cfg.mc_estimator)

    def choose(self, pool: PoolView, n: int) -> Selection:
        points = as_points(pool.require("embeddings", self.name), "PoolView.embeddings")
        uncertainty = np.asarray(pool.require("full_scores", self.name), dtype=np.float64)
        picks, weights, info = cluster_weighted_picks(points, uncertainty, n, self.cfg.weighted_clusters,
                                                      child_rng(pool), id_order(pool.ids))
        return Selection(ids=[pool.ids[i] for i in picks], scores=[float(w) for w in weights],
                         info={"cluster_weighted": info})
