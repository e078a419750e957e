"""Uncertainty-gap probes: does the LoRA-tuned model's uncertainty agree with the base model's?

STAR (Zhang et al. 2024, arXiv 2403.01165, Sec. 3.2) observes an "uncertainty gap": early in
active learning the tuned ("full" = base + adapter) model's uncertainty ranks examples
differently from the base model's and predicts its own errors worse. On a labelled probe
set, score every example with the same uncertainty measure under both models and compare:

* rank agreement of ``u_base`` and ``u_full``: Spearman's rho and Kendall's tau-b;
* how well each uncertainty flags the full model's mistakes: AUROC with "the full model's
  answer is wrong" as the positive class (0.5 = no better than chance).

Uncertainties are "higher = less sure". Rank statistics are undefined for some inputs
(fewer than two examples, a constant array, a probe set that is all right or all wrong);
they return ``None`` then, never NaN, so reports stay valid JSON. Everything is numpy;
scipy is only used by the tests, as a reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .calibration import as_1d_float, as_correct, check_same_length


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x``, float64 (n,); tied values share the mean of their positions."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    before = np.cumsum(counts) - counts  # how many values are strictly smaller
    return (before + (counts + 1) / 2.0)[inverse.ravel()]


def _pair(a: Any, b: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    x, y = as_1d_float(a, names[0]), as_1d_float(b, names[1])
    if len(x) != len(y):
        check_same_length(**{names[0]: x, names[1]: y})
    return x, y


def spearman(a: Any, b: Any) -> float | None:
    """Spearman's rho: Pearson correlation of the average ranks of ``a`` and ``b`` (Spearman 1904).

    ``rho = sum (r_a - mean)(r_b - mean) / sqrt(sum (r_a - mean)^2 * sum (r_b - mean)^2)``,
    tied values sharing their average rank. ``None`` when n < 2 or either array is constant.
    """
    x, y = _pair(a, b, ("a", "b"))
    if len(x) < 2:
        return None
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx -= rx.mean()
    ry -= ry.mean()
    sx, sy = float(rx @ rx), float(ry @ ry)
    if sx == 0.0 or sy == 0.0:  # ranks of a constant array are all (n + 1) / 2, exactly
        return None
    return float(np.clip((rx @ ry) / np.sqrt(sx * sy), -1.0, 1.0))


def _count_inversions(r: np.ndarray) -> int:
    """Pairs i < j with ``r[i] > r[j]`` for integers 0 <= r < n, in O(n log^2 n).

    Bottom-up merge sort, one vectorised pass per level: at width ``w`` runs of length ``w``
    are sorted; each right-hand run counts the elements of its left neighbour that are
    larger, then each pair of runs is merged. Keys ``pair * (n + 1) + value`` keep pairs
    apart so that one global sort / searchsorted serves all pairs at once.
    """
    n = len(r)
    x = r.astype(np.int64)
    pos = np.arange(n, dtype=np.int64)
    total, w = 0, 1
    while w < n:
        run = pos // w
        pair = run // 2
        offset = pair * (n + 1)
        key = offset + x
        right = (run % 2) == 1
        left_keys = key[~right]  # sorted: runs sorted inside, pairs in increasing order
        at_most = np.searchsorted(left_keys, key[right], side="right")
        pair_end = np.searchsorted(left_keys, offset[right] + (n + 1), side="left")
        total += int((pair_end - at_most).sum())  # left elements of the same pair that are larger
        x = np.sort(key) - offset  # merging keeps every pair in its own positions
        w *= 2
    return total


def _tied_pairs(x: np.ndarray) -> int:
    """Number of pairs i < j with equal values, ``sum_groups t(t - 1)/2``."""
    _, counts = np.unique(x, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau(a: Any, b: Any) -> float | None:
    """Kendall's tau-b, which corrects for ties (Kendall 1945).

    ``tau_b = (P - Q) / sqrt((n0 - n1)(n0 - n2))`` with P/Q the concordant/discordant pairs,
    ``n0 = n(n-1)/2`` and n1, n2 the pairs tied in ``a``, in ``b``. Computed in O(n log^2 n) as
    ``P - Q = n0 - n1 - n2 + n3 - 2Q`` (Knight 1966), n3 = pairs tied in both, Q counted
    as inversions of ``b`` after sorting by (``a``, ``b``). ``None`` when n < 2 or either
    array is constant.
    """
    x, y = _pair(a, b, ("a", "b"))
    n = len(x)
    if n < 2:
        return None
    n0 = n * (n - 1) // 2
    n1, n2 = _tied_pairs(x), _tied_pairs(y)
    if n1 == n0 or n2 == n0:
        return None
    _, x_rank = np.unique(x, return_inverse=True)  # dense ranks 0..k-1, shape (n,)
    _, y_rank = np.unique(y, return_inverse=True)
    x_rank, y_rank = x_rank.ravel(), y_rank.ravel()
    order = np.lexsort((y_rank, x_rank))  # by x, then y: pairs tied in x are never inversions
    discordant = _count_inversions(y_rank[order])
    n3 = _tied_pairs(x_rank * n + y_rank)  # pairs tied in both: equal (x, y) rank pairs
    s = n0 - n1 - n2 + n3 - 2 * discordant
    tau = s / np.sqrt(float(n0 - n1) * float(n0 - n2))
    return float(np.clip(tau, -1.0, 1.0))


def auroc(scores: Any, positives: Any) -> float | None:
    """Area under the ROC curve: P(score of a random positive > score of a random negative),
    ties counting 1/2.

    Mann-Whitney form (Hanley & McNeil 1982): ``AUROC = (R_pos - n_pos (n_pos + 1) / 2) /
    (n_pos * n_neg)`` with ``R_pos`` the sum of the positives' average ranks.
    ``None`` when there are no positives or no negatives.
    """
    s = as_1d_float(scores, "scores")
    pos = as_correct(positives, "positives").astype(bool)
    check_same_length(scores=s, positives=pos)
    n_pos = int(pos.sum())
    n_neg = len(s) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = float(_average_ranks(s)[pos].sum())
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def gap_report(u_base: Any, u_full: Any, full_correct: Any) -> dict[str, Any]:
    """Uncertainty-gap numbers on a labelled probe set, JSON-safe (``None``, never NaN).

    ``u_base[i]``, ``u_full[i]``: the same uncertainty measure for example ``i`` under the
    base and the full (base + LoRA) model, higher = less sure; ``full_correct[i]``: whether
    the full model answered ``i`` correctly. All shape (n,), n >= 1.

    Keys: ``spearman``, ``kendall`` (tau-b) between ``u_base`` and ``u_full``;
    ``auroc_base``, ``auroc_full``: AUROC of each uncertainty for predicting that the full
    model is WRONG; ``base_mean``, ``base_std``, ``full_mean``, ``full_std`` (population std,
    ddof=0); ``n``. Undefined rank metrics are ``None`` (see the module docstring). Empty
    input raises :class:`~activelora.errors.DataError`.
    """
    ub = as_1d_float(u_base, "u_base")
    uf = as_1d_float(u_full, "u_full")
    ok = as_correct(full_correct, "full_correct").astype(bool)
    n = check_same_length(u_base=ub, u_full=uf, full_correct=ok)
    wrong = ~ok
    return {
        "spearman": spearman(ub, uf),
        "kendall": kendall_tau(ub, uf),
        "auroc_base": auroc(ub, wrong),
        "auroc_full": auroc(uf, wrong),
        "base_mean": float(ub.mean()),
        "base_std": float(ub.std()),
        "full_mean": float(uf.mean()),
        "full_std": float(uf.std()),
        "n": int(n),
    }
