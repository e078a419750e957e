"""``typiclust``: the most typical example of each cluster that holds no label yet.

Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite Strategies Suit High and
Low Budgets", ICML 2022. With few labels, what teaches most is what is typical of the data,
and a batch should cover its modes; uncertainty pays only later. The rule, as implemented:

1. Cluster the labelled and unlabelled embeddings together into ``K = m + n`` clusters
   (``m`` examples selected so far, ``n`` the batch) by k-means
   (:func:`~activelora.strategies.remedies.kmeans`, k-means++ seeding from a generator drawn
   from the run's seeded ``pool.rng``: deterministic for a seed and round). ``K`` is cut to
   the number of distinct points.
2. Within each cluster C, ``typicality(x) = 1 / ((1/k) · Σ_{y ∈ kNN_C(x)} ||x - y||)`` with
   ``kNN_C(x)`` the ``k = min(20, |C| - 1)`` nearest other members of C, labelled ones
   included (the paper's Eq. 2, its k = 20). A cluster of one has typicality 0.
3. Pick, one at a time, from the cluster with the fewest labelled-or-picked points, the
   largest first, then the lower cluster index; take its most typical unlabelled point not yet
   picked (ties: the lower id). The first picks therefore cover the uncovered clusters,
   largest first; when the batch outnumbers them, the next picks go to the clusters with one
   label, then two, ... (the released code's rule; the paper also drops clusters under 5
   points, which at our pool sizes, K ≈ N/2, would drop nearly all of them, so we do not).

Embeddings: the base model's mean-pooled prompt hidden states (``Needs.labelled_embeddings``),
the same in every round, as the paper's fixed self-supervised representation. Memory: the
embeddings, k-means' (block, K, d) difference tensors and one cluster's kNN block at a time;
no (N, N) matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Needs, PoolView, Selection, register
from .batch import BatchStrategy, child_rng, id_order
from .geometry import neighbour_distances
from .remedies import kmeans

MAX_NEIGHBOURS = 20  # the paper's k


def typicality(points: np.ndarray, max_neighbours: int = MAX_NEIGHBOURS) -> np.ndarray:
    """``1 / mean distance to the k = min(max_neighbours, M - 1) nearest other points``, (M,).

    Zero for a single point. An exact duplicate group has mean distance 0; it is floored at
    the smallest positive float so typicality stays finite (and largest).
    """
    m = points.shape[0]
    k = min(max_neighbours, m - 1)
    if k < 1:
        return np.zeros(m)
    mean = neighbour_distances(points, k).mean(1)
    return 1.0 / np.maximum(mean, np.finfo(np.float64).tiny)


def typiclust_picks(unlabelled: np.ndarray, labelled: np.ndarray, n: int, rng: np.random.Generator,
                    tie_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """TypiClust's ``n`` picks: positions into ``unlabelled`` (u, d) in the order picked, their
    typicality, and details for the run log. ``labelled`` (m, d) are the points already
    selected; ``tie_rank`` (u,) breaks typicality ties (lower wins). Needs ``1 <= n <= u``."""
    m = labelled.shape[0]
    points = np.vstack([labelled, unlabelled]) if m else unlabelled
    return picks_from_clusters(points, kmeans(points, m + n, rng), m, n, tie_rank)


def picks_from_clusters(points: np.ndarray, clusters: np.ndarray, m: int, n: int,
                        tie_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Steps 2-3 of the rule for given cluster labels (N,) of ``points`` (N, d), whose first
    ``m`` rows are labelled: positions into the unlabelled rows ``points[m:]``, in the order
    picked, their typicality, and details for the run log."""
    u = points.shape[0] - m
    k = int(clusters.max()) + 1
    typical = np.zeros(m + u)
    for c in range(k):
        members = np.flatnonzero(clusters == c)
        typical[members] = typicality(points[members])
    sizes = np.bincount(clusters, minlength=k)
    taken = np.bincount(clusters[:m], minlength=k)
    # Each cluster's unlabelled members, most typical first (ties: lower tie_rank).
    queues: dict[int, list[int]] = {}
    unlabelled_clusters = clusters[m:]
    for c in range(k):
        members = np.flatnonzero(unlabelled_clusters == c)
        order = np.lexsort((tie_rank[members], -typical[m + members]))
        queues[c] = members[order].tolist()
    uncovered = sum(1 for c in range(k) if taken[c] == 0 and queues[c])
    picks: list[int] = []
    for _ in range(n):
        c = min((c for c in range(k) if queues[c]), key=lambda c: (taken[c], -sizes[c], c))
        picks.append(queues[c].pop(0))
        taken[c] += 1
    chosen = np.asarray(picks, dtype=np.int64)
    return chosen, typical[m + chosen], {"clusters": k, "uncovered_clusters": uncovered}


@register
class TypiClustStrategy(BatchStrategy):
    """TypiClust (Hacohen et al., ICML 2022): see :mod:`~activelora.strategies.typiclust`."""

    name = "typiclust"

    def needs(self) -> Needs:
        return Needs(hidden_states=True, labelled_embeddings=True, b_l2=self.cfg.b_l2)

    def choose(self, pool: PoolView, n: int) -> Selection:
        unlabelled, labelled = self.embedding_sets(pool)
        picks, typical, info = typiclust_picks(unlabelled, labelled, n, child_rng(pool), id_order(pool.ids))
        return Selection(ids=[pool.ids[i] for i in picks], scores=[float(t) for t in typical],
                         info={"typiclust": info})
