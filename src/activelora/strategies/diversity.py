"""Diversity step: k-center greedy over the top uncertainty candidates.

Top-n by uncertainty often buys near-duplicates (the same template, the same failure). With
``strategy.diversity_factor = f > 1`` a strategy takes the top ``m = ceil(f·n)`` candidates
and keeps ``n`` of them spread out in embedding space by k-center greedy (Sener & Savarese,
"Active Learning for Convolutional Neural Networks: A Core-Set Approach", ICLR 2018).
"""

from __future__ import annotations

import math

import numpy as np


def candidate_count(n: int, factor: float, available: int) -> int:
    """``m = min(available, ceil(factor·n))``: how many top candidates the diversity step sees."""
    # round() first so that e.g. 1.1*10 = 11.000000000000002 does not become 12.
    return min(available, math.ceil(round(factor * n, 9)))


def k_center_greedy(embeddings: np.ndarray, n: int) -> np.ndarray:
    """Pick ``n`` row indices of ``embeddings`` (m, d) spread out by k-center greedy.

    Rows must be ordered best-first (highest uncertainty first). The first pick is row 0;
    each next pick is ``argmax_i min_{j chosen} ||e_i - e_j||_2`` over the rows not yet
    chosen, ties going to the lower row (the higher-scoring candidate). Exact duplicates of
    chosen rows have distance 0 and so come last. Returns the picks in order, shape (n,).

    Cost: one (m, d) distance pass per pick, O(m·n·d) time and O(m) extra memory.
    Distances are ``||e_i - e_j||`` computed from differences in float64, not from
    ``|a|²+|b|²-2a·b``, whose cancellation would blur the near-duplicates we are avoiding.
    """
    points = np.asarray(embeddings, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (m, d), got shape {points.shape}")
    m = points.shape[0]
    if not 0 <= n <= m:
        raise ValueError(f"cannot pick {n} of {m} candidates")
    if not np.isfinite(points).all():
        raise ValueError("embeddings contain non-finite values")
    picks = np.empty(n, dtype=np.int64)
    if n == 0:
        return picks
    # min_dist[i]: distance from candidate i to the nearest chosen one; -inf marks chosen
    # rows so argmax never re-picks them, even when every remaining distance is 0.
    min_dist = np.full(m, np.inf)
    current = 0
    for k in range(n):
        picks[k] = current
        min_dist[current] = -np.inf
        if k == n - 1:
            break
        dist = np.linalg.norm(points - points[current], axis=1)  # (m,)
        np.minimum(min_dist, dist, out=min_dist)
        current = int(np.argmax(min_dist))  # first maximum: ties -> higher-scoring row
    return picks
