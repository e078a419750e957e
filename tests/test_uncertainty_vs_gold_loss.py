"""benchmarks/uncertainty_vs_gold_loss.py: the AUROC and the rankings' heads, against plain references."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("uncertainty_vs_gold_loss")


def _pairwise_auroc(wrong: np.ndarray, right: np.ndarray) -> float:
    """P(wrong > right) + ½ P(wrong = right), over every pair, in float64."""
    wins = sum(float(w > r) + 0.5 * float(w == r) for w in wrong for r in right)
    return wins / (len(wrong) * len(right))


def test_auroc_matches_the_pairwise_count(script):
    rng = np.random.default_rng(0)
    for _ in range(50):
        wrong = rng.integers(0, 6, size=int(rng.integers(1, 15))).astype(np.float64)  # ties on purpose
        right = rng.integers(0, 6, size=int(rng.integers(1, 15))).astype(np.float64)
        assert script.auroc(wrong, right) == pytest.approx(_pairwise_auroc(wrong, right), abs=1e-12)


def test_compare_groups_and_heads(script):
    ids = [f"x{i}" for i in range(6)]
    own = np.array([0.9, 0.8, 0.1, 0.2, 0.5, 0.4])
    gold = np.array([0.1, 0.2, 0.9, 0.8, 0.4, 0.5])
    wrong = np.array([True, False, True, False, True, False])
    group = ["a", "a", "b", "b", "c", "c"]
    out = script.compare(ids, own, gold, wrong, group, top=2)
    assert out["top"] == {"k": 2, "shared": 0, "gold_loss": {"b": 2}, "own_score": {"a": 2}}
    assert out["groups"]["a"] == {"n": 2, "accuracy": 0.5, "spearman": None, "auroc": 1.0}
    assert out["groups"]["b"]["auroc"] == 0.0
    assert out["spearman_all"] == pytest.approx(-1.0, abs=1e-12)  # the ranks of own and gold sum to 7 everywhere
