"""``probcover``: greedy maximum coverage of the pool by balls of radius δ.

Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering Lens", NeurIPS 2022
(ProbCover). At low budgets the expected error is bounded by the probability mass *not*
covered by δ-balls around the labelled points, so labels should go where a ball covers the
most points that no label covers yet. The rule, as implemented:

1. Points: the labelled and unlabelled embeddings together; ``B(x) = {y : ||x - y|| <= δ}``.
2. Every point in the ball of a labelled example is covered.
3. ``n`` times: pick the unlabelled point whose ball holds the most uncovered points
   (ties: the lower id), and mark its ball covered. When no ball holds an uncovered point,
   the rest of the batch is drawn at random (the paper's fallback), from the run's seeded rng.

Choosing δ without labels. The paper takes the largest δ whose balls stay 95% "pure" under
k-means pseudo-labels with as many clusters as classes; a generative task has no classes to
count. We set δ from the geometry alone::

    δ = median_x  d_k(x),   k = max(1, round(s · (N - 1)))

with ``d_k(x)`` the distance from x to its k-th nearest other point and ``s`` =
``strategy.probcover_share`` (default 0.02): the ball of a median point holds about a share
``s`` of the labelled and unlabelled points (k + 1 with itself). The share, not a raw
radius, is what carries over between embeddings and pool sizes, and it says directly how
coarse coverage is: at 0.02 a typical ball holds ~2% of the points, so about 50 such balls
would cover the pool once, inside the 32-192 labels of our studies, while one ball is still
far smaller than a skill of the mix pool (a larger share covers faster and merges modes; a
smaller one leaves every ball near-empty, and the greedy gain stops telling points apart).
In high dimensions distances concentrate, so balls overlap more than these shares suggest;
the info's ``random_fill`` counts picks made after coverage ran out. Not tuned.
``strategy.probcover_delta`` sets δ itself instead. δ is recomputed from the points each
round (the pool shrinks); it is recorded in the selection's info. Not facility location: its
objective needs a similarity on every pair, an (N, N) quantity, where coverage needs only
the balls, which are sparse at a small share.

Embeddings: the base model's mean-pooled prompt hidden states, as for ``typiclust``. Memory:
the embeddings, the balls (about ``s·N²`` indices) and one block of distances at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Needs, PoolView, Selection, random_keys, register
from .batch import BatchStrategy, id_order
from .geometry import balls, neighbour_distances


def coverage_radius(points: np.ndarray, share: float) -> float:
    """``median_x d_k(x)``, ``k = max(1, round(share · (N - 1)))``: the label-free δ (0 for N < 2)."""
    n = points.shape[0]
    if n < 2:
        return 0.0
    k = min(n - 1, max(1, int(round(share * (n - 1)))))
    return float(np.median(neighbour_distances(points, k)[:, k - 1]))


def probcover_picks(unlabelled: np.ndarray, labelled: np.ndarray, n: int, delta: float,
                    tie_rank: np.ndarray, fill_order: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """ProbCover's ``n`` picks: positions into ``unlabelled`` (u, d) in the order picked, how many
    newly covered points each pick's ball added, and details for the run log.

    ``tie_rank`` (u,): lower wins a coverage tie. ``fill_order`` (u,): the order of the random
    fallback once no ball covers anything new. Needs ``1 <= n <= u``.
    """
    m, u = labelled.shape[0], unlabelled.shape[0]
    points = np.vstack([labelled, unlabelled]) if m else unlabelled
    ball = balls(points, points, delta)  # ball[i]: indices within δ of point i (itself included)
    covered = np.zeros(m + u, dtype=bool)
    for i in range(m):
        covered[ball[i]] = True
    initially = int(covered.sum())
    # gain[i]: uncovered points in ball i. Balls are symmetric (j in B(i) iff i in B(j)), so
    # covering j lowers the gain of exactly the balls in B(j).
    gain = np.array([int((~covered[b]).sum()) for b in ball])
    free = np.ones(u, dtype=bool)
    picks: list[int] = []
    gains: list[float] = []
    while len(picks) < n:
        candidates = np.flatnonzero(free)
        best = candidates[np.lexsort((tie_rank[candidates], -gain[m + candidates]))[0]]
        if gain[m + best] == 0:
            break
        newly = ball[m + best][~covered[ball[m + best]]]
        covered[newly] = True
        for j in newly:
            gain[ball[j]] -= 1
        picks.append(int(best))
        gains.append(float(len(newly)))
        free[best] = False
    greedy = len(picks)
    for position in fill_order:
        if len(picks) == n:
            break
        if free[position]:
            picks.append(int(position))
            gains.append(0.0)
            free[position] = False
    info = {"delta": delta, "covered_before": initially / (m + u), "covered_after": float(covered.mean()),
            "random_fill": n - greedy}
    return np.asarray(picks, dtype=np.int64), np.asarray(gains), info


@register
class ProbCoverStrategy(BatchStrategy):
    """ProbCover (Yehuda et al., NeurIPS 2022): see :mod:`~activelora.strategies.probcover`."""

    name = "probcover"

    def needs(self) -> Needs:
        return Needs(hidden_states=True, labelled_embeddings=True, b_l2=self.cfg.b_l2)

    def choose(self, pool: PoolView, n: int) -> Selection:
        unlabelled, labelled = self.embedding_sets(pool)
        delta = self.cfg.probcover_delta
        if delta is None:
            delta = coverage_radius(np.vstack([labelled, unlabelled]), self.cfg.probcover_share)
        keys = random_keys(pool)  # the random fallback's order, drawn as the random strategy draws
        picks, gains, info = probcover_picks(unlabelled, labelled, n, float(delta), id_order(pool.ids),
                                             np.argsort(-keys, kind="stable"))
        return Selection(ids=[pool.ids[i] for i in picks], scores=[float(g) for g in gains],
                         info={"probcover": info})
