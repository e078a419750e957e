"""benchmarks/allocation_bound.py: the isotonic fit and the best split, against float64 references."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "allocation_bound.py"


@pytest.fixture(scope="module")
def bound(benchmark_script):
    return benchmark_script("allocation_bound")


def _isotonic_minmax(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The isotonic least-squares fit by its min-max formula, at each distinct x:
    f(i) = max_{j ≤ i} min_{k ≥ i} (weighted mean of levels j..k)."""
    levels = np.unique(x)
    sums = np.array([np.sum(w[x == v] * y[x == v]) for v in levels], dtype=np.float64)
    weights = np.array([np.sum(w[x == v]) for v in levels], dtype=np.float64)
    m = len(levels)
    out = np.empty(m)
    for i in range(m):
        out[i] = max(min(sums[j:k + 1].sum() / weights[j:k + 1].sum() for k in range(i, m)) for j in range(i + 1))
    return out


def test_isotonic_fit_matches_the_minmax_formula(bound):
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        x = rng.integers(0, 12, size=n).astype(np.float64)
        y = rng.random(n) + 0.05 * x
        w = rng.random(n) + 0.1
        levels, fitted = bound.isotonic_fit(x, y, w)
        np.testing.assert_array_equal(levels, np.unique(x))
        np.testing.assert_allclose(fitted, _isotonic_minmax(x, y, w), rtol=0, atol=1e-12)
        assert np.all(np.diff(fitted) >= -1e-15)


def test_step_curve_holds_levels_and_clips_outside(bound):
    levels, fitted = np.array([2.0, 5.0, 9.0]), np.array([0.1, 0.4, 0.8])
    np.testing.assert_array_equal(bound.step_curve(levels, fitted, 11),
                                  [0.1, 0.1, 0.1, 0.1, 0.1, 0.4, 0.4, 0.4, 0.4, 0.8, 0.8, 0.8])


def test_best_allocation_matches_enumeration(bound):
    rng = np.random.default_rng(1)
    for _ in range(40):
        skills = int(rng.integers(1, 4))
        upto = 8
        curves = [np.cumsum(rng.random(upto + 1)) * rng.random() if rng.random() < 0.5 else rng.random(upto + 1)
                  for _ in range(skills)]
        lower = [int(v) for v in rng.integers(0, 3, size=skills)]
        upper = [int(v) for v in rng.integers(3, upto + 1, size=skills)]
        budget = int(rng.integers(sum(lower), sum(upper) + 1))
        best = max(sum(float(c[n]) for c, n in zip(curves, split))
                   for split in itertools.product(*(range(lo, hi + 1) for lo, hi in zip(lower, upper)))
                   if sum(split) == budget)
        value, split = bound.best_allocation(curves, lower, upper, budget)
        assert value == pytest.approx(best, abs=1e-12)
        assert sum(split) == budget and all(lo <= n <= hi for n, lo, hi in zip(split, lower, upper))
        assert sum(float(c[n]) for c, n in zip(curves, split)) == pytest.approx(best, abs=1e-12)


def test_best_allocation_refuses_an_impossible_budget(bound):
    curves = [np.zeros(5), np.zeros(5)]
    with pytest.raises(ValueError, match="budget 9 outside"):
        bound.best_allocation(curves, [0, 0], [4, 4], 9)
    with pytest.raises(ValueError, match="budget 1 outside"):
        bound.best_allocation(curves, [1, 1], [4, 4], 1)


def test_a_folder_without_runs_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("allocation_bound: ") and "\n" not in done.stderr.strip()
    assert "no runs found" in done.stderr
    assert not (tmp_path / "out.md").exists()


def test_per_skill_residuals_are_measured_minus_the_curve_in_problems(bound):
    # Two skills, a quarter and three quarters of 40 test problems; curves already weighted by share.
    rows = [{"n_skill": {"a": 4, "b": 10}, "test_share": {"a": 0.25, "b": 0.75}}]
    curves = [0.25 * np.linspace(0.0, 1.0, 11), 0.75 * np.full(11, 0.5)]
    breakdown = {"x": {"labels": {"a": 6.0, "b": 12.0}, "accuracy": {"accuracy": {"a": 0.9, "b": 0.25}}}}
    checked = {"x": {}}
    lines = bound.per_skill_residuals(rows, ["a", "b"], curves, breakdown, "accuracy", 40, checked)
    # a: (0.9 - 0.6) * 10 problems = +3.0 at 6 labels (more than the 4 any run bought: *)
    # b: (0.25 - 0.5) * 30 problems = -7.5 at 12 labels (beyond 10, held flat: *)
    assert lines[-2:] == ["| a | +3.0 (6*) |", "| b | -7.5 (12*) |"]
    assert checked["x"]["per_skill"]["a"]["modelled"] == pytest.approx(0.6, abs=1e-12)


def test_runs_of_one_seed_are_refused_with_exit_2(bound, capsys):
    bound.require_two_seeds([{"seed": 0}, {"seed": 1}], "allocation_bound")  # two seeds: nothing said
    with pytest.raises(SystemExit) as exit_:
        bound.require_two_seeds([{"seed": 3}, {"seed": 3}], "allocation_bound")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("allocation_bound: the runs hold seed [3] only;")
