"""Uncertainty-gap probes against scipy.stats and O(n^2) pairwise references."""

from __future__ import annotations

import json
import math
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.errors import DataError
from activelora.probes import auroc, gap_report, kendall_tau, spearman
from activelora.probes.gap import _count_inversions

FAST = settings(deadline=None, max_examples=100)

# Few distinct values -> many ties; wide floats -> none. Both matter for rank statistics.
values = st.one_of(
    st.integers(-3, 3).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def paired(draw, min_n: int = 0, max_n: int = 70):
    n = draw(st.integers(min_n, max_n))
    a = draw(st.lists(values, min_size=n, max_size=n))
    b = draw(st.lists(values, min_size=n, max_size=n))
    return a, b


@contextmanager
def _quiet():
    """scipy warns on constant input; the NaN it then returns is what we compare with."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def sign(x: float) -> int:
    return (x > 0) - (x < 0)


def ref_kendall_tau_b(a, b):
    n = len(a)
    s = n1 = n2 = 0
    for i in range(n):
        for j in range(i + 1, n):
            s += sign(a[i] - a[j]) * sign(b[i] - b[j])
            n1 += a[i] == a[j]
            n2 += b[i] == b[j]
    n0 = n * (n - 1) // 2
    if n < 2 or n1 == n0 or n2 == n0:
        return None
    return s / math.sqrt((n0 - n1) * (n0 - n2))


def ref_auroc(scores, positives):
    pos = [s for s, p in zip(scores, positives) if p]
    neg = [s for s, p in zip(scores, positives) if not p]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def same(ours, ref, tol=1e-9):
    """``None`` from us where the reference is None/NaN, else equal within tol."""
    if ref is None or (isinstance(ref, float) and math.isnan(ref)):
        return ours is None
    return ours is not None and abs(ours - ref) <= tol


# ------------------------------------------------------------------ random inputs vs references


@FAST
@given(paired(min_n=2))
def test_spearman_matches_scipy(pair):
    a, b = pair
    with _quiet():
        ref = float(scipy.stats.spearmanr(a, b).statistic)
    assert same(spearman(a, b), ref), (spearman(a, b), ref)


@FAST
@given(paired(min_n=2))
def test_kendall_matches_scipy_and_pairwise_reference(pair):
    a, b = pair
    with _quiet():
        ref_scipy = float(scipy.stats.kendalltau(a, b, variant="b").statistic)
    ours = kendall_tau(a, b)
    assert same(ours, ref_scipy), (ours, ref_scipy)
    assert same(ours, ref_kendall_tau_b(a, b))


@FAST
@given(st.data())
def test_auroc_matches_pairwise_count(data):
    n = data.draw(st.integers(1, 70))
    scores = data.draw(st.lists(values, min_size=n, max_size=n))
    positives = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    assert same(auroc(scores, positives), ref_auroc(scores, positives), tol=1e-12)


@FAST
@given(st.lists(st.integers(0, 9), max_size=300))
def test_count_inversions_matches_brute_force(xs):
    # Values must be < n (dense ranks); wrap them into range.
    n = len(xs)
    r = np.array([x % n for x in xs] if n else [], dtype=np.int64)
    brute = sum(1 for i in range(n) for j in range(i + 1, n) if r[i] > r[j])
    assert _count_inversions(r) == brute


def test_kendall_on_a_larger_sample_with_ties():
    # n not a power of two, so the merge passes end on ragged runs.
    rng = np.random.default_rng(3)
    a = rng.integers(0, 40, 1537).astype(float)
    b = a + rng.integers(0, 25, 1537)
    assert kendall_tau(a, b) == pytest.approx(scipy.stats.kendalltau(a, b).statistic, abs=1e-12)
    assert spearman(a, b) == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)


# ------------------------------------------------------------------ hand-made cases


def test_known_values():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(x, np.exp(x)) == 1.0 and kendall_tau(x, np.exp(x)) == 1.0
    assert spearman(x, x[::-1]) == -1.0 and kendall_tau(x, x[::-1]) == -1.0
    # one swapped pair of 10: tau = (9 - 1) / 10
    assert kendall_tau(x, [1, 2, 3, 5, 4]) == pytest.approx(0.8)
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert auroc([0.5] * 4, [0, 1, 0, 1]) == 0.5
    # positive 0.5 beats negative 0.2, ties 0.5: (1 + 0.5) / 2
    assert auroc([0.5, 0.2, 0.5], [1, 0, 0]) == 0.75


@pytest.mark.parametrize(
    "a, b",
    [([], []), ([1.0], [2.0]), ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0], [5.0, 5.0])],
)
def test_undefined_correlations_are_none(a, b):
    assert spearman(a, b) is None
    assert kendall_tau(a, b) is None


def test_auroc_without_both_classes_is_none():
    assert auroc([0.1, 0.2], [1, 1]) is None
    assert auroc([0.1, 0.2], [False, False]) is None


# ------------------------------------------------------------------ gap_report


def test_gap_report_values_and_json():
    rng = np.random.default_rng(0)
    n = 300
    full_correct = rng.random(n) < 0.6
    u_full = np.where(full_correct, 0.3, 0.7) + rng.normal(0, 0.1, n)  # tracks errors
    u_base = rng.random(n)  # unrelated to them
    rep = gap_report(u_base, u_full, full_correct)
    assert set(rep) == {"spearman", "kendall", "auroc_base", "auroc_full", "base_mean",
                        "base_std", "full_mean", "full_std", "n"}
    json.dumps(rep, allow_nan=False)
    assert rep["n"] == n and type(rep["n"]) is int
    assert rep["spearman"] == pytest.approx(scipy.stats.spearmanr(u_base, u_full).statistic)
    assert rep["kendall"] == pytest.approx(scipy.stats.kendalltau(u_base, u_full).statistic)
    # positives are the WRONG answers: high uncertainty on them gives AUROC near 1
    assert rep["auroc_full"] == pytest.approx(ref_auroc(u_full, ~full_correct))
    assert rep["auroc_full"] > 0.9
    assert 0.35 < rep["auroc_base"] < 0.65
    assert rep["base_mean"] == pytest.approx(u_base.mean())
    assert rep["full_std"] == pytest.approx(u_full.std(ddof=0))


def test_gap_report_degenerate_cases_give_none_not_nan():
    rep = gap_report([0.2, 0.4, 0.6], [0.5, 0.5, 0.5], [True, True, True])
    assert rep["spearman"] is None and rep["kendall"] is None
    assert rep["auroc_base"] is None and rep["auroc_full"] is None
    assert rep["full_std"] == 0.0
    json.dumps(rep, allow_nan=False)
    one = gap_report([0.3], [0.4], [False])
    assert one["n"] == 1 and one["spearman"] is None and one["auroc_full"] is None
    assert one["base_mean"] == 0.3 and one["base_std"] == 0.0
    json.dumps(one, allow_nan=False)


@pytest.mark.parametrize(
    "args, match",
    [
        (([], [], []), "empty"),
        (([0.1, 0.2], [0.1], [1, 0]), "differ in length"),
        (([0.1, math.nan], [0.1, 0.2], [1, 0]), "not finite"),
        (([0.1, math.inf], [0.1, 0.2], [1, 0]), "not finite"),
        (([0.1, 0.2], [0.1, 0.2], [1, 3]), "0/1"),
    ],
)
def test_gap_report_rejects_bad_arrays(args, match):
    with pytest.raises(DataError, match=match):
        gap_report(*args)


def test_rank_functions_reject_mismatched_lengths():
    with pytest.raises(DataError):
        spearman([1.0, 2.0], [1.0])
    with pytest.raises(DataError):
        kendall_tau([1.0, 2.0], [1.0])
    with pytest.raises(DataError):
        auroc([1.0, 2.0], [True])
