"""Remedies for uncertainty sampling that buys outliers: how scores become a ranking.

Top-n by uncertainty spends labels on what the model cannot yet learn (the "collective
outliers" of Karamcheti et al. 2021, "Mind Your Outliers! Investigating the Negative Impact
of Outliers on Active Learning for Visual Question Answering", ACL 2021): on ``arith`` the
tuned model is most uncertain on the long multi-step families it fails at every budget we
can afford. Each remedy here is a :class:`~activelora.config.StrategyConfig` switch, off by
default (except ``cold_start_rounds`` for ``star``: 2), applied by :meth:`Strategy.select <activelora.strategies.base.Strategy.select>` to
every strategy with informative scores:

* ``skip_top = q``: the top ``floor(q·N)`` of the N pool scores are not eligible (at most
  ``N - n`` of them, so ``n`` can always be bought): skip the extreme tail.
* ``target_quantile = m``: prefer the scores nearest the pool's ``m``-quantile, i.e.
  ``preference_i = -|p_i - m|`` with ``p_i`` the mid-rank percentile of score ``i`` in [0, 1]
  (``m = 0.5``: a middle band of uncertainty, what the model is close to getting right).
* ``strata = k``: k-means strata over the prompt embeddings; the batch is split over the
  strata in proportion to their size (largest remainder) and each stratum gives its best
  ones: stratified uncertainty sampling, the spirit of ATGen's HUDS (Tsvigun et al. 2025,
  "ATGen: A Framework for Active Text Generation"), which mixes length-normalised NLL with
  diversity over embedding clusters. Our own formulation, not a reproduction.
* ``cold_start_rounds = r``: the first r query rounds select at random (the same draw as the
  ``random`` strategy), until the model has seen enough labels for its uncertainty to mean
  something (the uncertainty gap of STAR, Zhang et al. 2024).
* ``random_share = f``: a mixed batch. ``r = floor(f·n + 1/2)`` of every scored batch are the
  first r of the ``random`` strategy's draw, the other ``n - r`` come from the ranking (after
  the remedies above, the diversity step or the strata), those r left out. The exploration
  half of an ε-greedy rule: whatever the scores miss, for instance a skill the tuned model
  answers wrongly with confidence, still arrives at about its share of the pool. Why it
  exists: on ``mix`` star bought no ``successor`` after its cold start under any λ
  (docs/results.md, eleventh and thirteenth sessions).
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import row_blocks


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each score in [0, 1]: ``(#{s_j < s_i} + (#{s_j = s_i} - 1)/2) / (N - 1)``.

    Ties share one percentile; a pool of one has percentile 0.5. Float64, shape (N,).
    """
    s = np.asarray(scores, dtype=np.float64)
    n = s.size
    if n == 0:
        return s.copy()
    if n == 1:
        return np.full(1, 0.5)
    sorted_s = np.sort(s)
    below = np.searchsorted(sorted_s, s, side="left")
    equal = np.searchsorted(sorted_s, s, side="right") - below
    return (below + (equal - 1) / 2.0) / (n - 1)


def random_count(n: int, random_share: float) -> int:
    """How many of a batch of ``n`` ``random_share`` draws at random: ``floor(f·n + 1/2)``
    (half up, so that 0.5 of an odd batch is not left to banker's rounding), at most ``n``."""
    if random_share <= 0:
        return 0
    return min(n, math.floor(round(random_share * n, 9) + 0.5))


def skipped_count(pool_size: int, n: int, skip_top: float) -> int:
    """How many of the top scores ``skip_top`` removes: ``min(floor(q·N), N - n)``."""
    if skip_top <= 0:
        return 0
    # round() first so that e.g. 0.1*30 = 3.0000000000000004 stays 3.
    return max(0, min(math.floor(round(skip_top * pool_size, 9)), pool_size - n))


def remedy_order(scores: np.ndarray, tie_order: np.ndarray, n: int, *, skip_top: float = 0.0,
                 target_quantile: float | None = None) -> tuple[np.ndarray, dict]:
    """The eligible pool positions, best first, and details for the run log.

    ``tie_order`` is the descending-score order with ties already broken (from
    :func:`~activelora.strategies.base.rank`); it also breaks ties of the preference.
    """
    order = np.asarray(tie_order)
    info: dict = {}
    skip = skipped_count(len(order), n, skip_top)
    if skip:
        info["skipped_top"] = skip
        order = order[skip:]
    if target_quantile is not None:
        preference = -np.abs(percentile_ranks(scores) - target_quantile)
        order = order[np.argsort(-preference[order], kind="stable")]
        info["target_quantile"] = target_quantile
    return order, info


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 100) -> np.ndarray:
    """Cluster labels (N,) of ``points`` (N, d) by Lloyd's k-means with k-means++ seeding.

    k-means++ (Arthur & Vassilvitskii 2007): the first centre uniformly at random, each next
    one with probability proportional to the squared distance to the nearest centre chosen.
    Then alternate: assign to the nearest centre (ties to the lower index), move each centre
    to its members' mean; stop when the assignment no longer changes. A centre left without
    members moves to the point farthest from its own centre. ``k`` is cut to the number of
    distinct points. Float64 throughout.
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"kmeans expects (N, d) points, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("kmeans: points contain non-finite values")
    n = x.shape[0]
    k = min(int(k), len(np.unique(x, axis=0))) if n else 0
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for c in range(1, k):
        total = d2.sum()
        pick = rng.choice(n, p=d2 / total) if total > 0 else int(rng.integers(n))
        centres[c] = x[pick]
        d2 = np.minimum(d2, ((x - centres[c]) ** 2).sum(1))
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iterations):
        new, own = _nearest_centres(x, centres)
        if np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            members = labels == c
            if members.any():
                centres[c] = x[members].mean(0)
            else:
                centres[c] = x[int(own.argmax())]
    return labels


def _nearest_centres(x: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest centre (ties to the lower index) and its squared distance to it.

    Squared distances from differences, ``((x_i - c_j)**2).sum()``, computed for a block of
    rows at a time: the (rows, k, d) difference tensor stays within
    :data:`~activelora.strategies.geometry.BLOCK_ELEMENTS` instead of growing as (N, k, d),
    and every value is the one an unblocked pass computes, so the clusters are too.
    """
    n, k = x.shape[0], centres.shape[0]
    labels = np.empty(n, dtype=np.int64)
    own = np.empty(n)
    for block in row_blocks(n, k * x.shape[1]):
        dist = ((x[block, None, :] - centres[None, :, :]) ** 2).sum(-1)  # (rows, k)
        labels[block] = dist.argmin(1)
        own[block] = dist[np.arange(dist.shape[0]), labels[block]]
    return labels, own


def stratified_pick(order: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, dict]:
    """``n`` of the positions in ``order`` (best first), split over strata by size.

    Stratum c holds ``m_c`` of the eligible positions; its quota is ``n·m_c/M`` rounded down,
    the remaining labels going to the largest remainders (ties: the larger stratum, then
    the lower label). Each stratum gives its first ``quota`` positions in ``order``; the
    result keeps the order of ``order``.
    """
    order = np.asarray(order)
    strata = labels[order]
    names, sizes = np.unique(strata, return_counts=True)
    total = int(sizes.sum())
    exact = n * sizes / total
    quota = np.floor(exact).astype(np.int64)
    left = n - int(quota.sum())
    by_remainder = sorted(range(len(names)), key=lambda c: (-(exact[c] - quota[c]), -sizes[c], names[c]))
    for c in by_remainder[:left]:
        quota[c] += 1
    want = dict(zip(names.tolist(), quota.tolist()))
    taken = []
    for position, stratum in zip(order, strata):
        if want[int(stratum)] > 0:
            taken.append(position)
            want[int(stratum)] -= 1
    return np.asarray(taken, dtype=np.int64), {"strata": {int(s): int(q) for s, q in zip(names, quota)}}
