"""Calibration probes against plain-Python float64 references on random inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activelora.errors import ConfigError, DataError
from activelora.probes import (
    apply_temperature,
    brier,
    calibration_report,
    ece,
    fit_temperature,
    mce,
    nll,
    reliability_table,
)

FAST = settings(deadline=None, max_examples=80)

# Edge values on purpose: bin edges for bins=10/5/4, the ends, and 3 * 0.1 (just above 0.3).
EDGES = [0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.6, 0.75, 0.8, 1.0, 0.1 * 3, 0.7000000000000001]
confidences = st.one_of(st.floats(0.0, 1.0, allow_nan=False), st.sampled_from(EDGES))


@st.composite
def samples(draw, max_n: int = 60):
    n = draw(st.integers(1, max_n))
    conf = draw(st.lists(confidences, min_size=n, max_size=n))
    corr = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return conf, corr


# ------------------------------------------------------------------ plain-Python references


def ref_width_bin(c: float, bins: int) -> int:
    """The documented convention: the first bin whose upper edge k/bins is >= c."""
    for b in range(bins):
        if c <= (b + 1) / bins:
            return b
    raise AssertionError("confidence above 1")


def ref_mass_bins(conf: list[float], bins: int) -> list[int]:
    n = len(conf)
    return [sum(1 for x in conf if x < c) * bins // n for c in conf]


def ref_bins(conf, corr, bins, binning):
    """Per bin: (count, mean confidence, accuracy) or None when empty."""
    idx = [ref_width_bin(c, bins) for c in conf] if binning == "width" else ref_mass_bins(conf, bins)
    out = []
    for b in range(bins):
        members = [i for i in range(len(conf)) if idx[i] == b]
        if not members:
            out.append(None)
            continue
        k = len(members)
        out.append((k, math.fsum(conf[i] for i in members) / k,
                    math.fsum(float(corr[i]) for i in members) / k))
    return out


def ref_ece_mce(conf, corr, bins, binning):
    rows = [r for r in ref_bins(conf, corr, bins, binning) if r is not None]
    n = len(conf)
    e = math.fsum(k / n * abs(acc - mc) for k, mc, acc in rows)
    m = max(abs(acc - mc) for k, mc, acc in rows)
    return e, m


# ------------------------------------------------------------------ random inputs vs reference


@FAST
@given(samples(), st.integers(1, 15), st.sampled_from(["width", "mass"]))
def test_ece_mce_match_reference(sample, bins, binning):
    conf, corr = sample
    e, m = ref_ece_mce(conf, corr, bins, binning)
    assert ece(conf, corr, bins, binning) == pytest.approx(e, abs=1e-12)
    assert mce(conf, corr, bins, binning) == pytest.approx(m, abs=1e-12)


@FAST
@given(samples(), st.integers(1, 15), st.sampled_from(["width", "mass"]))
def test_reliability_table_matches_reference(sample, bins, binning):
    conf, corr = sample
    table = reliability_table(conf, corr, bins, binning)
    assert len(table) == bins
    for row, ref in zip(table, ref_bins(conf, corr, bins, binning)):
        if ref is None:
            assert row["count"] == 0 and row["confidence"] is None and row["accuracy"] is None
            continue
        k, mc, acc = ref
        assert row["count"] == k
        assert row["confidence"] == pytest.approx(mc, abs=1e-12)
        assert row["accuracy"] == pytest.approx(acc, abs=1e-12)
        assert row["lo"] <= row["confidence"] + 1e-12 and row["confidence"] <= row["hi"] + 1e-12
        if binning == "width":
            b = table.index(row)
            assert (row["lo"], row["hi"]) == (b / bins, (b + 1) / bins)
    json.dumps(table, allow_nan=False)


@FAST
@given(samples())
def test_brier_and_nll_match_reference(sample):
    conf, corr = sample
    n = len(conf)
    assert brier(conf, corr) == pytest.approx(math.fsum((c - y) ** 2 for c, y in zip(conf, corr)) / n,
                                              abs=1e-12)
    eps = 1e-6
    ref = 0.0
    for c, y in zip(conf, corr):
        p = min(max(c, eps), 1 - eps)
        ref -= math.log(p) if y else math.log(1 - p)
    assert nll(conf, corr, eps=eps) == pytest.approx(ref / n, rel=1e-10, abs=1e-12)


@FAST
@given(samples())
def test_one_bin_is_the_global_gap(sample):
    conf, corr = sample
    gap = abs(np.mean(conf) - np.mean(corr))
    for binning in ("width", "mass"):
        assert ece(conf, corr, 1, binning) == pytest.approx(gap, abs=1e-12)
        assert mce(conf, corr, 1, binning) == pytest.approx(gap, abs=1e-12)


@FAST
@given(samples(), st.integers(1, 12), st.randoms(use_true_random=False))
def test_equal_mass_ece_ignores_input_order(sample, bins, rnd):
    # Ties are never split, so shuffling equal confidences cannot move examples between bins.
    conf, corr = sample
    order = list(range(len(conf)))
    rnd.shuffle(order)
    shuffled = ([conf[i] for i in order], [corr[i] for i in order])
    assert ece(*shuffled, bins, "mass") == pytest.approx(ece(conf, corr, bins, "mass"), abs=1e-12)


@FAST
@given(st.lists(st.floats(0, 1), min_size=1, max_size=60, unique=True), st.integers(1, 15))
def test_equal_mass_bins_are_balanced_without_ties(conf, bins):
    n = len(conf)
    counts = [row["count"] for row in reliability_table(conf, [True] * n, bins, "mass")]
    assert sum(counts) == n
    assert max(counts) - min(counts) <= 1
    assert max(counts) == math.ceil(n / bins)


@FAST
@given(st.lists(st.floats(0, 1), min_size=1, max_size=40, unique=True), st.data())
def test_equal_mass_with_one_example_per_bin_is_mean_abs_error(conf, data):
    corr = data.draw(st.lists(st.booleans(), min_size=len(conf), max_size=len(conf)))
    expected = np.mean(np.abs(np.array(conf) - np.array(corr, dtype=float)))
    assert ece(conf, corr, len(conf), "mass") == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------ hand-made cases


def test_perfect_calibration_is_zero():
    conf = [0.8] * 10 + [0.3] * 10
    corr = [1] * 8 + [0] * 2 + [1] * 3 + [0] * 7
    for binning in ("width", "mass"):
        assert ece(conf, corr, 10, binning) == pytest.approx(0.0, abs=1e-15)
        assert mce(conf, corr, 10, binning) == pytest.approx(0.0, abs=1e-15)


def test_confident_and_always_wrong_is_one():
    conf, corr = [1.0] * 5, [False] * 5
    assert ece(conf, corr) == 1.0
    assert mce(conf, corr) == 1.0
    assert brier(conf, corr) == 1.0
    assert nll(conf, corr, eps=1e-12) == pytest.approx(-math.log(1e-12))


def test_confident_and_always_right_is_zero():
    assert ece([1.0] * 4, [1] * 4) == 0.0
    assert brier([1.0] * 4, [1] * 4) == 0.0
    assert nll([1.0] * 4, [1] * 4) == pytest.approx(0.0, abs=1e-11)


def test_known_two_bin_example():
    # bin 0 = [0, 0.5]: conf 0.1, acc 0; bin 1 = (0.5, 1]: conf 0.9, acc 1 -> both gaps 0.1.
    assert ece([0.1, 0.9], [0, 1], bins=2) == pytest.approx(0.1)
    # bins: [0.2] (acc 1, gap .8), [0.6, 0.6] (acc .5, gap .1) -> ECE = 1/3*.8 + 2/3*.1 = 1/3.
    assert ece([0.2, 0.6, 0.6], [1, 1, 0], bins=2) == pytest.approx(1 / 3)
    assert mce([0.2, 0.6, 0.6], [1, 1, 0], bins=2) == pytest.approx(0.8)


def test_edge_conventions():
    table = reliability_table([0.0, 0.3, 0.1 * 3, 0.5, 1.0], [1] * 5, bins=10)
    counts = [r["count"] for r in table]
    # 0 -> bin 0; 0.3 sits on the edge -> (0.2, 0.3]; 3 * 0.1 > 0.3 -> (0.3, 0.4];
    # 0.5 -> (0.4, 0.5]; 1.0 -> the last bin.
    assert counts == [1, 0, 1, 1, 1, 0, 0, 0, 0, 1]


def test_equal_mass_keeps_ties_together():
    # Six tied values straddle the boundary at rank 5 of 10: all go to the lower bin.
    conf = [0.1, 0.2, 0.3, 0.4] + [0.5] * 6
    table = reliability_table(conf, [0] * 10, bins=2, binning="mass")
    assert [r["count"] for r in table] == [10, 0]
    assert table[1]["lo"] is None and table[1]["accuracy"] is None
    conf = [0.5] * 6 + [0.6, 0.7, 0.8, 0.9]
    table = reliability_table(conf, [0] * 10, bins=2, binning="mass")
    assert [r["count"] for r in table] == [6, 4]
    assert (table[0]["lo"], table[0]["hi"], table[1]["lo"], table[1]["hi"]) == (0.5, 0.5, 0.6, 0.9)


def test_accepts_numpy_bool_and_01_floats():
    conf = np.array([0.2, 0.9, 0.7])
    assert ece(conf, np.array([False, True, True])) == ece(conf, [0.0, 1.0, 1.0])


# ------------------------------------------------------------------ report and validation


def test_report_is_plain_json_and_consistent():
    rng = np.random.default_rng(0)
    conf = rng.random(200)
    corr = rng.random(200) < conf**2
    rep = calibration_report(conf, corr, bins=15)
    assert set(rep) == {"ece", "ece_equal_mass", "mce", "brier", "nll", "mean_confidence",
                        "accuracy", "n", "bins"}
    json.dumps(rep, allow_nan=False)
    assert all(type(v) is float for k, v in rep.items() if k not in ("n", "bins"))
    assert type(rep["n"]) is int and rep["n"] == 200 and rep["bins"] == 15
    assert rep["ece"] == ece(conf, corr, 15)
    assert rep["ece_equal_mass"] == ece(conf, corr, 15, "mass")
    assert rep["mce"] == mce(conf, corr, 15)
    assert rep["brier"] == brier(conf, corr) and rep["nll"] == nll(conf, corr)
    assert rep["accuracy"] == pytest.approx(corr.mean())
    assert rep["mean_confidence"] == pytest.approx(conf.mean())


@pytest.mark.parametrize(
    "conf, corr, match",
    [
        ([], [], "empty"),
        ([0.5, 0.5], [1], "differ in length"),
        ([0.5, 1.2], [1, 0], "outside"),
        ([-0.1], [1], "outside"),
        ([math.nan], [1], "not finite"),
        ([0.5], [2], "0/1"),
        ([0.5], [0.5], "0/1"),
        ([[0.5]], [[1]], "1-D"),
        (["a"], [1], "numbers"),
    ],
)
def test_bad_arrays_raise_data_error(conf, corr, match):
    for fn in (ece, mce, brier, nll, reliability_table, calibration_report, fit_temperature):
        with pytest.raises(DataError, match=match):
            fn(conf, corr)


@pytest.mark.parametrize("kwargs", [{"bins": 0}, {"bins": -3}, {"bins": 2.5}, {"bins": True},
                                    {"binning": "quantile"}])
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        ece([0.5], [1], **kwargs)
    with pytest.raises(ValueError):  # ConfigError is also a ValueError
        reliability_table([0.5], [1], **kwargs)


@pytest.mark.parametrize("eps", [0, -1e-3, 0.5, math.nan])
def test_bad_eps(eps):
    with pytest.raises(ConfigError, match="eps"):
        nll([0.5], [1], eps=eps)


# ------------------------------------------------------------------ temperature scaling


def softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def ref_temperature_nll(conf, corr, temperatures, eps=1e-12):
    """NLL of correctness under sigmoid(logit(conf)/T), for each T: shape (len(temperatures),)."""
    p = np.clip(np.asarray(conf, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(corr, dtype=np.float64)
    z = np.log(p / (1 - p))[None, :] / np.asarray(temperatures, dtype=np.float64)[:, None]
    # -log sigmoid(z) = softplus(-z); -log(1 - sigmoid(z)) = softplus(z)
    return (y * softplus(-z) + (1 - y) * softplus(z)).mean(axis=1)


GRID = np.exp(np.linspace(math.log(1e-2), math.log(1e2), 4001))


@settings(deadline=None, max_examples=60)
@given(samples(max_n=50))
def test_fitted_temperature_beats_dense_grid(sample):
    conf, corr = sample
    t = fit_temperature(conf, corr)
    assert 1e-2 <= t <= 1e2
    at_fit = ref_temperature_nll(conf, corr, [t])[0]
    best_on_grid = ref_temperature_nll(conf, corr, GRID).min()
    assert at_fit <= best_on_grid + 1e-9 * max(1.0, best_on_grid)


def test_tiny_eps_keeps_tiny_sequence_probabilities_apart():
    # Long answers have sequence probabilities far below the default eps of 1e-12.
    conf = [0.0, 1e-250, 1e-200, 1e-30, 1e-13, 0.4, 0.9]
    corr = [0, 0, 1, 0, 1, 1, 0]
    eps = 1e-300
    assert math.isfinite(nll(conf, corr, eps=eps))
    assert nll(conf, corr, eps=eps) > nll(conf, corr)  # a correct 1e-200 now costs ~460 nats
    t = fit_temperature(conf, corr, eps=eps)
    grid = ref_temperature_nll(conf, corr, GRID, eps=eps)
    assert ref_temperature_nll(conf, corr, [t], eps=eps)[0] <= grid.min() + 1e-9 * grid.min()
    # 1 - eps rounds to 1.0 here; the clip must still keep every output finite.
    ends = [0.0, 1.0]
    assert math.isfinite(nll(ends, [1, 0], eps=eps))
    assert math.isfinite(fit_temperature(ends + conf, [1, 0] + corr, eps=eps))
    assert np.all(np.isfinite(apply_temperature(ends, t, eps=eps)))


def test_fit_recovers_known_temperature():
    rng = np.random.default_rng(7)
    z = rng.normal(0.0, 3.0, 20000)
    true_t = 2.5
    corr = rng.random(z.size) < 1 / (1 + np.exp(-z / true_t))
    conf = 1 / (1 + np.exp(-z))  # over-confident by a factor of true_t
    t = fit_temperature(conf, corr)
    assert t == pytest.approx(true_t, rel=0.08)
    calibrated = apply_temperature(conf, t)
    assert ece(calibrated, corr) < 0.5 * ece(conf, corr)
    assert nll(calibrated, corr) < nll(conf, corr)


def test_fit_degenerate_cases():
    # No signal to rescale: every logit is 0, every T gives the same NLL.
    assert fit_temperature([0.5] * 4, [1, 0, 1, 1]) == 1.0
    # Perfectly separated: sharper is always better, so the lower bound.
    assert fit_temperature([0.9, 0.8, 0.2], [1, 1, 0]) == 1e-2
    # Anti-informative (confident and always wrong): flatten to the upper bound.
    assert fit_temperature([0.9, 0.8, 0.7], [0, 0, 0], bounds=(0.5, 4.0)) == 4.0
    for bounds in ((2.0, 1.0), (0.0, 1.0), (1.0, math.inf), ("a", 2.0), (1.0,)):
        with pytest.raises(ConfigError, match="bounds"):
            fit_temperature([0.5], [1], bounds=bounds)


def test_apply_temperature():
    conf = np.array([0.01, 0.2, 0.5, 0.7, 0.999])
    assert np.allclose(apply_temperature(conf, 1.0), conf, rtol=1e-12, atol=0)
    hot, cold = apply_temperature(conf, 3.0), apply_temperature(conf, 0.3)
    assert np.all(np.abs(hot - 0.5) <= np.abs(conf - 0.5))  # T > 1: towards 0.5
    assert np.all(np.abs(cold - 0.5) >= np.abs(conf - 0.5))  # T < 1: away from 0.5
    assert np.all(np.diff(hot) > 0) and np.all(np.diff(cold) > 0)  # order kept
    # sigmoid(logit(p)/2) = sqrt(p) / (sqrt(p) + sqrt(1-p))
    assert apply_temperature([0.2], 2.0)[0] == pytest.approx(math.sqrt(0.2) / (math.sqrt(0.2) + math.sqrt(0.8)))
    ends = apply_temperature([0.0, 1.0], 1.0)
    assert np.all(np.isfinite(ends)) and 0 < ends[0] < 1e-11 and 1 - 1e-11 < ends[1] < 1
    for bad in (0, -1.0, math.inf, math.nan, True, "2"):
        with pytest.raises(ConfigError, match="temperature"):
            apply_temperature(conf, bad)
