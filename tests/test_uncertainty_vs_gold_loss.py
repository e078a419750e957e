"""benchmarks/uncertainty_vs_gold_loss.py: per-group statistics and the rankings' heads on a worked case."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def script(benchmark_script):
    return benchmark_script("uncertainty_vs_gold_loss")


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
